// Package payload computes the data of a delivery envelope from an event and
// a webhook's shaping options (SPEC §3): deletes carry no data, creates carry
// all (selected) fields, updates carry all or only the changed (selected)
// fields.
//
// It runs once per (event, webhook) match on the matcher's hot path, so the
// common case (no field selection, all fields) returns the event's data
// unchanged without allocating, and shaping decodes only the top level of data
// plus the objects that nested paths name. It must never re-encode a value it
// passes through (numbers keep their precision and their spelling), never
// panic on any input, and never do I/O.
package payload
