/*
 * hmap — open-addressing hash maps from a string or a 64-bit key to a 32-bit value.
 *
 * Owns: its slot array and (for string maps) copies of the keys.
 * Never: stores pointers into caller memory; iterates in a meaningful order.
 * Invariants: load factor <= 0.7 (grows by doubling); deletion uses tombstones.
 */
#ifndef JOULE_HMAP_H
#define JOULE_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_slot;

struct hmap {
	struct hmap_slot *slots;
	size_t cap;        /* power of two, 0 when empty */
	size_t used;       /* live entries */
	size_t tomb;       /* tombstones */
	bool str_keys;
};

void hmap_init_str(struct hmap *m);
void hmap_init_u64(struct hmap *m);
void hmap_free(struct hmap *m);

/* Insert or replace. Returns 0 or -ENOMEM (map unchanged). */
int hmap_put_str(struct hmap *m, const char *key, uint32_t value);
int hmap_put_u64(struct hmap *m, uint64_t key, uint32_t value);
/* Lookup: true and *value set when present. */
bool hmap_get_str(const struct hmap *m, const char *key, uint32_t *value);
bool hmap_get_u64(const struct hmap *m, uint64_t key, uint32_t *value);
/* Remove; true when it was present. */
bool hmap_del_str(struct hmap *m, const char *key);
bool hmap_del_u64(struct hmap *m, uint64_t key);

#endif
