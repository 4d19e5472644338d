/* SPDX-License-Identifier: MIT */
/*
 * hashmap_obj.h: the caller's object of the intrusive hash map tests (unit
 * and stress): a key, a version, a magic word that the retire callback
 * overwrites, and the map's node (not first, as in a real object); the
 * match functions on it and the hash of a key.
 */
#ifndef QSBR_TEST_HASHMAP_OBJ_H
#define QSBR_TEST_HASHMAP_OBJ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <qsbr/hashmap.h>

#define OBJ_ALIVE UINT64_C(0xa11fe)
#define OBJ_DEAD UINT64_C(0xdead)

struct obj {
	uint64_t key, version;
	_Atomic uint64_t magic;
	qsbr_hashmap_node node;
};

static inline struct obj *obj_of(const qsbr_hashmap_node *n)
{
	return (struct obj *)(void *)((char *)(uintptr_t)n - offsetof(struct obj, node));
}

/* The object of a retire header (the callback's argument). */
static inline struct obj *obj_of_retire(qsbr_node *r)
{
	return obj_of((qsbr_hashmap_node *)(void *)((char *)r - offsetof(qsbr_hashmap_node, retire)));
}

static inline bool match_key(const qsbr_hashmap_node *n, const void *key)
{
	return obj_of(n)->key == *(const uint64_t *)key;
}

/* A conditional match: the key, at the version given. */
struct kv {
	uint64_t key, version;
};

static inline bool match_version(const qsbr_hashmap_node *n, const void *key)
{
	const struct kv *kv = key;

	return obj_of(n)->key == kv->key && obj_of(n)->version == kv->version;
}

static inline uint64_t hash_of(uint64_t key)
{
	return qsbr_hashmap_hash64(key);
}

#endif /* QSBR_TEST_HASHMAP_OBJ_H */
