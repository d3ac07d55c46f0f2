/*
 * hmap — open addressing with linear probing; FNV-1a for strings, a 64-bit mixer for ints.
 * Owns its slots and string key copies. Never shrinks (tables only grow with the fleet).
 */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_EMPTY, SLOT_LIVE, SLOT_TOMB };

struct hmap_slot {
	uint64_t hash;
	union {
		char *s;
		uint64_t k;
	} key;
	uint32_t value;
	uint8_t state;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static void init(struct hmap *m, bool str)
{
	memset(m, 0, sizeof(*m));
	m->str_keys = str;
}

void hmap_init_str(struct hmap *m) { init(m, true); }
void hmap_init_u64(struct hmap *m) { init(m, false); }

void hmap_free(struct hmap *m)
{
	if (!m)
		return;
	if (m->str_keys)
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].state == SLOT_LIVE)
				free(m->slots[i].key.s);
	free(m->slots);
	m->slots = NULL;
	m->cap = m->used = m->tomb = 0;
}

static bool key_eq(const struct hmap *m, const struct hmap_slot *s, uint64_t h, const char *ks,
		   uint64_t ku)
{
	if (s->hash != h)
		return false;
	if (!m->str_keys)
		return s->key.k == ku;
	return ks && s->key.s && strcmp(s->key.s, ks) == 0;
}

/* Index of the live slot holding the key, or SIZE_MAX. */
static size_t find(const struct hmap *m, uint64_t h, const char *ks, uint64_t ku)
{
	if (m->cap == 0)
		return SIZE_MAX;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
		const struct hmap_slot *s = &m->slots[i];
		if (s->state == SLOT_EMPTY)
			return SIZE_MAX;
		if (s->state == SLOT_LIVE && key_eq(m, s, h, ks, ku))
			return i;
	}
	return SIZE_MAX;
}

static int grow(struct hmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	/* Many tombstones and few live entries: rehash at the same size. */
	if (m->cap && (m->used + 1) * 10 < m->cap * 5)
		ncap = m->cap;
	struct hmap_slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct hmap_slot *s = &m->slots[i];
		if (s->state != SLOT_LIVE)
			continue;
		size_t j = s->hash & (ncap - 1);
		while (ns[j].state == SLOT_LIVE)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	m->tomb = 0;
	return 0;
}

static int put(struct hmap *m, uint64_t h, const char *ks, uint64_t ku, uint32_t value)
{
	size_t at = find(m, h, ks, ku);
	if (at != SIZE_MAX) {
		m->slots[at].value = value;
		return 0;
	}
	if ((m->used + m->tomb + 1) * 10 > m->cap * 7) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	char *copy = NULL;
	if (m->str_keys) {
		if (!ks)
			return -EINVAL;
		copy = strdup(ks);
		if (!copy)
			return -ENOMEM;
	}
	size_t mask = m->cap - 1, i = h & mask;
	while (m->slots[i].state == SLOT_LIVE)
		i = (i + 1) & mask;
	struct hmap_slot *s = &m->slots[i];
	if (s->state == SLOT_TOMB)
		m->tomb--;
	s->state = SLOT_LIVE;
	s->hash = h;
	if (m->str_keys)
		s->key.s = copy;
	else
		s->key.k = ku;
	s->value = value;
	m->used++;
	return 0;
}

int hmap_put_str(struct hmap *m, const char *key, uint32_t value)
{
	return put(m, hash_str(key), key, 0, value);
}

int hmap_put_u64(struct hmap *m, uint64_t key, uint32_t value)
{
	return put(m, hash_u64(key), NULL, key, value);
}

bool hmap_get_str(const struct hmap *m, const char *key, uint32_t *value)
{
	size_t at = find(m, hash_str(key), key, 0);
	if (at == SIZE_MAX)
		return false;
	if (value)
		*value = m->slots[at].value;
	return true;
}

bool hmap_get_u64(const struct hmap *m, uint64_t key, uint32_t *value)
{
	size_t at = find(m, hash_u64(key), NULL, key);
	if (at == SIZE_MAX)
		return false;
	if (value)
		*value = m->slots[at].value;
	return true;
}

static bool del(struct hmap *m, size_t at)
{
	if (at == SIZE_MAX)
		return false;
	if (m->str_keys)
		free(m->slots[at].key.s);
	m->slots[at].state = SLOT_TOMB;
	m->used--;
	m->tomb++;
	return true;
}

bool hmap_del_str(struct hmap *m, const char *key)
{
	return del(m, find(m, hash_str(key), key, 0));
}

bool hmap_del_u64(struct hmap *m, uint64_t key)
{
	return del(m, find(m, hash_u64(key), NULL, key));
}
