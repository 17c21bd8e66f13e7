// Package sealing encrypts the secrets Hookline keeps on
// hookline.subscriptions (webhook signing secrets and endpoint credentials)
// so that a Kafka client or the broker's files on disk never show them in
// plain text, as Svix does with its main secret.
//
// A Box seals with AES-256-GCM under its first key and opens with any of
// its keys, so that a key is rotated by putting the new one first and
// keeping the old one until every webhook has been written again. A sealed
// value reads "hlenc:v2:" and the base64 of the key's 4-byte id, a 12-byte
// nonce and the ciphertext; its additional data is the prefix and the
// place it was sealed for (the webhook id and the field: SealFor,
// OpenFor), so that it opens nowhere else. "hlenc:v1:" values, bound to
// the prefix only, still open. A value without a prefix is plain text
// written before sealing existed, and opens as itself.
//
// The package must never log or return a key, and imports nothing of
// Hookline.
package sealing
