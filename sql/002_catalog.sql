-- 002: the built-in accelerator catalog (builtin = 1).
--
-- Where the figures come from: public vendor datasheets, product pages and documentation,
-- vendor/open-source repositories (device plugins, exporters, issue threads with nvidia-smi
-- and npu-smi output) and, where no vendor document exists, press and analyst reports. Each
-- row below names its sources. TFLOPS are DENSE (NVIDIA datasheet headline Tensor figures are
-- with 2:4 sparsity; the dense rate is half). memory_gib and bandwidth_gbs are rounded to
-- integers (memory_gib takes the vendor's "GB" capacity figure as given); fp8_tflops is 0 when
-- the part has no FP8.
--
-- Huawei figures are partly PLANNING VALUES: Huawei publishes no per-SKU datasheet for the
-- Ascend 910B variants or the 910C, and secondary sources disagree (910B FP16 256..~400
-- TFLOPS, bandwidth 0.4..1.8 TB/s, power 310..400 W). Treat them as provisional and learn
-- real limits from telemetry. Ascend TFLOPS are FP16, with BF16 assumed equal.
--
-- How blanks were filled (the rules, applied in this order):
--   idle_w    1. an observed idle draw (nvidia-smi / npu-smi / dcgm-exporter): its midpoint;
--             2. else a sibling part with the same die AND the same board class whose idle
--                draw was observed;
--             3. else 10 % of tdp_w, rounded (H100 SXM idles at ~70 W of 700 W and L40S at
--                ~36 W of 350 W, both ~10 %).
--   min_cap_w 1. the observed power-limit minimum (nvidia-smi -q -d POWER);
--             2. else a sibling part with the same die and board class whose minimum was
--                observed;
--             3. else half of tdp_w, rounded. Deliberately conservative: too high a floor
--                only refuses some low caps; too low a floor would promise caps the hardware
--                may not enforce. Ascend NPUs have no documented per-device power cap at
--                all; for them min_cap_w is a scheduling floor, not a hardware limit.
--   tdp_w and the other figures: a stated sibling value, named in the row's comment.
-- The stored values may be corrected at run time through POST /v1/fleet (models list).
-- Cambricon MLU590 is left out: no public specification was found.

-- ======================================================================== NVIDIA (cuda)

-- A100-SXM4-80GB. Source: NVIDIA A100 datasheet
-- https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf
-- (via https://glennklockwood.com/garden/processors/A100): 80 GB HBM2e, 2039 GB/s, BF16 312
-- dense (624 sparse), no FP8, 400 W; power-limit range 100-400 W from nvidia-smi -q in
-- https://github.com/NVIDIA/DCGM/issues/152. Confidence: official.
-- Assumption: idle_w not observed, no observed sibling -> 10 % of TDP = 40 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('A100-SXM4-80GB', 'nvidia', 'cuda', 80, 2039, 312, 0, 400, 100, 40, 1);

-- H100-SXM5-80GB. Source: NVIDIA H100 datasheet (https://www.nvidia.com/en-us/data-center/h100/);
-- exact dense values 989.4 BF16 / 1978.9 FP8 in https://glennklockwood.com/garden/processors/h100;
-- power-limit 200-700 W: nvidia-smi -q -d POWER in
-- https://github.com/stackhpc/ansible-slurm-appliance/pull/975; idle 66-80 W seen in an
-- 8xH100 dcgm-exporter capture and nvidia-smi dumps. Confidence: official.
-- Assumption: idle_w = 70 W (typical of the observed 66-80 W).
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('H100-SXM5-80GB', 'nvidia', 'cuda', 80, 3350, 989, 1979, 700, 200, 70, 1);

-- H100-PCIe-80GB. Source: NVIDIA H100 PCIe product brief PB-11133-001_v02, Nov 2022 (350 W,
-- >2,000 GB/s; copy at https://manuals.plus/m/d4b5dc21484df3ba8fbe84918338461cc074a3fcebcc13423eadc2b10ac3bda4);
-- Tensor rates: NVIDIA H100 datasheet PCIe column (sparse 1513 BF16 / 3026 FP8 -> dense
-- 756 / 1513). Confidence: official.
-- Assumptions: min_cap_w not verified and no same-board sibling -> half TDP = 175 W (read the
-- real floor from DCGM_FI_DEV_POWER_MGMT_LIMIT_MIN); idle_w -> 10 % of TDP = 35 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('H100-PCIe-80GB', 'nvidia', 'cuda', 80, 2000, 756, 1513, 350, 175, 35, 1);

-- H200-SXM-141GB. Source: NVIDIA H200 datasheet (https://www.nvidia.com/en-us/data-center/h200/):
-- 141 GB HBM3e, 4.8 TB/s, same Tensor rates as H100 SXM, up to 700 W. Confidence: official.
-- Assumptions: min_cap_w and idle_w from the sibling H100-SXM5-80GB (same GH100 die, same
-- SXM5/HGX board class): 200 W and 70 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('H200-SXM-141GB', 'nvidia', 'cuda', 141, 4800, 989, 1979, 700, 200, 70, 1);

-- H20-96GB. Source: no public NVIDIA datasheet (China-only SKU). 96 GB and MIG x7:
-- https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-gpus.html; compute,
-- bandwidth, TDP: press reports, e.g. https://willitrunai.com/es/gpus/h20-96gb and
-- https://zangshuxian.com/new/674733024499207168. Confidence: secondary.
-- Sources disagree on TDP (400 W most reports vs 550 W); 400 W used.
-- Assumptions: min_cap_w and idle_w from the sibling H100-SXM5-80GB (same GH100 die, HGX
-- SXM5 board): 200 W and 70 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('H20-96GB', 'nvidia', 'cuda', 96, 4000, 148, 296, 400, 200, 70, 1);

-- B200-180GB. Source: HGX B200 per-GPU dense rates at 1000 W (BF16 2.25 PF, FP8 4.5 PF):
-- NVIDIA Blackwell datasheet as tabulated in https://glennklockwood.com/garden/processors/B200;
-- 180 GB visible, 8 TB/s, 1000 W: https://docs.vultr.com/inference-cookbook/cuda/getting-started/hardware-overview.
-- Confidence: official. Memory is 180 GB usable (192 GB physical per press).
-- Assumptions: min_cap_w not verified, no sibling -> half TDP = 500 W; idle_w -> 10 % of
-- TDP = 100 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('B200-180GB', 'nvidia', 'cuda', 180, 8000, 2250, 4500, 1000, 500, 100, 1);

-- L40S. Source: NVIDIA L40S datasheet table (BF16 362.05 dense, FP8 733 dense, 350 W,
-- 864 GB/s) as reproduced at https://www.mullet.se/product.html?product_id=355414; idle
-- 35.7 W from a real dcgm-exporter capture. Confidence: official.
-- Assumptions: idle_w = 36 W (observed, rounded); min_cap_w not verified -> half TDP = 175 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('L40S', 'nvidia', 'cuda', 48, 864, 362, 733, 350, 175, 36, 1);

-- L20. Source: China-only SKU, no public NVIDIA datasheet; 48 GB GDDR6 / 864 GB/s / 275 W:
-- https://www.topcpu.net/en/gpu-c/a40-pcie-vs-l20; Tensor rates (119.5 BF16, 239 FP8 dense)
-- from press reports of the partner spec sheet, unverified. Confidence: secondary.
-- Assumptions: idle_w from the sibling L40S (same AD102 die, same PCIe dual-slot board,
-- observed 36 W); min_cap_w not verified -> half TDP = 138 W (137.5 rounded).
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('L20', 'nvidia', 'cuda', 48, 864, 119.5, 239, 275, 138, 36, 1);

-- ======================================================================== Huawei (cann)
-- No FP8 on 910B/910C (Huawei's FP8/HiF8 arrives with Ascend 950). BF16 assumed = FP16.

-- Ascend910B1. Source: variant name list in MindCluster docs
-- (https://github.com/Ascend/mind-cluster docs/en/scheduling/api/k8s.md @22bb3d98); 64 GB
-- HBM2e. No public per-variant datasheet. Confidence: low.
-- Assumptions (PLANNING VALUES): bandwidth, TFLOPS, TDP from the nearest sibling
-- Ascend910B2 (24 AICore; the B1 is probably the 25-AICore part, unverified): 1600 GB/s,
-- 376 TFLOPS, 400 W; idle_w from the sibling Ascend910B3 observation (93 W); min_cap_w ->
-- half TDP = 200 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('Ascend910B1', 'huawei', 'cann', 64, 1600, 376, 0, 400, 200, 93, 1);

-- Ascend910B2. Source: 64 GB + 24 AICore: https://github.com/Project-HAMi/ascend-device-plugin
-- ascend-device-configmap.yaml @ed35e1c4b003795de84ba942f6965fa269e866b3; FP16 376 TFLOPS,
-- 1.6 TB/s, 400 W: secondary press (376 matches the per-die figure Huawei/SiliconFlow give
-- for 910C dies). Confidence: secondary.
-- Assumptions (PLANNING VALUES): tdp_w = 400 W, the top of the reported 310-400 W range;
-- idle_w from the sibling Ascend910B3 (same die and OAM board, observed 90-96 W) = 93 W;
-- min_cap_w -> half TDP = 200 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('Ascend910B2', 'huawei', 'cann', 64, 1600, 376, 0, 400, 200, 93, 1);

-- Ascend910B3. Source: 64 GB, 20 AICore: Project-HAMi/ascend-device-plugin
-- ascend-device-configmap.yaml @ed35e1c4; idle 89.9-96.0 W with 65536 MB HBM in npu-smi:
-- https://github.com/InternLM/lmdeploy/issues/2598; FP16 313 TFLOPS, 1.6 TB/s, 400 W:
-- secondary press. Confidence: secondary.
-- Assumptions (PLANNING VALUES): tdp_w = 400 W (top of the reported 310-400 W range);
-- idle_w = 93 W (midpoint of the observation); min_cap_w -> half TDP = 200 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('Ascend910B3', 'huawei', 'cann', 64, 1600, 313, 0, 400, 200, 93, 1);

-- Ascend910B4. Source: 32 GB (32768 MB), 20 AICore: Project-HAMi/ascend-device-plugin
-- ascend-device-configmap.yaml @ed35e1c4 and https://github.com/vllm-project/vllm-ascend/issues/129;
-- idle 87.0-88.2 W: https://github.com/1Panel-dev/1Panel/issues/9472; 280 TFLOPS FP16 for
-- "910B" (variant not stated): https://ai.gitee.com/docs/compute/clusters_gpu/ascend_gpu.
-- Confidence: secondary.
-- Assumptions (PLANNING VALUES): bandwidth and TDP not found -> from the sibling Ascend910B3
-- (same 20-AICore die): 1600 GB/s (probably an overestimate for a 32 GB part) and 400 W;
-- idle_w = 88 W (observed); min_cap_w -> half TDP = 200 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('Ascend910B4', 'huawei', 'cann', 32, 1600, 280, 0, 400, 200, 88, 1);

-- Ascend910C (one package = two 910B-class dies; k8s, npu-smi and npu-exporter show each
-- die as its own NPU, this catalog counts packages). Source: 128 GB/package, up to 752 TFLOPS
-- dense BF16/FP16 per package: Huawei + SiliconFlow "Serving Large Language Models on Huawei
-- CloudMatrix384", arXiv:2506.12708 (https://arxiv.org/abs/2506.12708); 3.2 TB/s: analyst
-- estimate (https://aiwiki.ai/wiki/huawei_ascend_910c); per-die 64 GB and package idle
-- 162-186 W (npu-smi, power on die 0): https://github.com/vllm-project/vllm-ascend/issues/2534.
-- Confidence: secondary; compute 752 (paper) vs ~780-800 (analysts).
-- Assumptions (PLANNING VALUES): no official TDP -> 2 x the 910B planning value = 800 W;
-- idle_w = 174 W (midpoint of the observation); min_cap_w -> half TDP = 400 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('Ascend910C', 'huawei', 'cann', 128, 3200, 752, 0, 800, 400, 174, 1);

-- Ascend310P3 (Atlas 300I Pro inference card). Source: 8 AICore: Ascend/mind-cluster
-- virtualization templates doc; 24 GB (24576 MB): Project-HAMi ascend-device-configmap.yaml;
-- 70 TFLOPS FP16 / 140 TOPS INT8 / 204.8 GB/s / 72 W: Huawei Atlas 300I Pro product page
-- figures, consistent with the dual-chip Atlas 300I Duo reported at
-- https://3dnews.ru/1131049/uskoritel-huawei-atlas-300i-duo-osnashchaetsya-paroy-iichipov-ascend-310.
-- Confidence: secondary.
-- Assumptions: bf16_tflops holds the FP16 rate (70; BF16 on 310P not documented in these
-- sources); bandwidth 204.8 rounded to 205; idle_w -> 10 % of TDP = 7 W; min_cap_w -> half
-- TDP = 36 W. npu-exporter reports BOARD power for this card.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('Ascend310P3', 'huawei', 'cann', 24, 205, 70, 0, 72, 36, 7, 1);

-- ===================================================================== Cambricon (neuware)

-- MLU370-X8 (one card, two Siyuan 370 chips; figures per card). Source: Cambricon launch,
-- March 2022: BF16 96 TFLOPS, INT8 256 TOPS, 48 GB LPDDR5, 614.4 GB/s, 250 W, as reported at
-- http://guangxilong.com/c/032129635H022.html and
-- http://www.rencaizhenjiang.com/news/hard/20220324/124384.html. Confidence: secondary.
-- Assumptions: bandwidth 614.4 rounded to 614; idle_w -> 10 % of TDP = 25 W; min_cap_w ->
-- half TDP = 125 W.
INSERT INTO models (name, vendor, stack, memory_gib, bandwidth_gbs, bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w, builtin)
VALUES ('MLU370-X8', 'cambricon', 'neuware', 48, 614, 96, 0, 250, 125, 25, 1);
