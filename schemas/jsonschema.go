package schemas

import "embed"

// JSONSchemas holds the JSON Schemas (draft 2020-12) of the messages and
// bodies Hookline exchanges, as jsonschema/<name>.schema.json:
//
//   - event: an input event on hookline.events (Event)
//   - webhook_event: a change on hookline.subscriptions (WebhookEvent)
//   - delivery_job: a job on hookline.deliveries and hookline.retry.* (Job)
//   - attempt: an attempt on hookline.attempts (Attempt)
//   - dead_letter: a message on hookline.dead (DeadLetter)
//   - envelope: the body of a delivery (Envelope)
//
// Each has an absolute $id ending in its file name; the schemas refer to
// one another by file name. Tests check that they match the Go types.
//
//go:embed jsonschema/*.json
var JSONSchemas embed.FS
