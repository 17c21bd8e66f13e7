// Package records builds the records the stages write (delivery jobs,
// attempts, dead letters of failed deliveries) in one encoding, and says
// what replaces a record that is over the broker's size limit.
//
// It owns the shape of those records on the wire; it must never write them
// (that is broker.Writer's) or decide a delivery's fate (the stages').
package records
