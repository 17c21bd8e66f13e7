// Package sealing encrypts the secrets Hookline keeps on
// hookline.subscriptions (webhook signing secrets and endpoint credentials)
// so that a Kafka client or the broker's files on disk never show them in
// plain text, as Svix does with its main secret.
//
// A Box seals with AES-256-GCM under its first key and opens with any of
// its keys, so that a key is rotated by putting the new one first and
// keeping the old one until every webhook has been written again. A sealed
// value reads "hlenc:v1:" and the base64 of the key's 4-byte id, a 12-byte
// nonce and the ciphertext. A value without that prefix is plain text
// written before sealing existed, and opens as itself.
//
// The package must never log or return a key, and imports nothing of
// Hookline.
package sealing
