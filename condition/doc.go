// Package condition owns the language of a webhook's condition field: compiling a
// boolean expression once, when the webhook is saved or loaded, and running it against
// each event the webhook's events filter lets through.
//
// It is built on github.com/expr-lang/expr, which compiles to bytecode for a small
// virtual machine, has no side effects, no I/O and no loops other than builtins over
// finite collections.
//
// The package must never do I/O, never import another Hookline package (schemas
// imports it to validate webhooks), and never panic: a bad expression is an *Error
// from Compile, and a failure while running is (false, *Error) from Match. The caller
// treats a runtime error as "no match" and counts it in a metric.
//
// # Variables
//
//	data         object   the resource after the change
//	changes      object   for updates: {"field": {"old": ..., "new": ...}}
//	context      object   e.g. {"actor": "admin@company.com"}
//	type         string   e.g. "ticket.updated"
//	resource     string   e.g. "ticket"
//	trigger      string   e.g. "update"
//	resource_id  string
//	tenant       string
//	related      array    of {"resource": "event", "id": "e42..."}
//
// Any other top-level name is a compile error ("unknown name prioritty"). Fields of
// data, changes and context are not declared: any key may be used, and JSON numbers
// are float64, so data.amount > 100 compares numbers.
//
// # Missing fields and nil
//
// A missing key reads as nil, and member access is nil-safe throughout: a.b.c behaves
// as a?.b?.c. So changes.status.new == "closed" is simply false for an update that
// did not change status, rather than an error. Everything else that goes wrong at run
// time is an error: comparing nil or a string with a number (data.amount > 5 when
// amount is absent or "5"), an index out of range (data.items[3] with two items), an
// operator on the wrong type. Guard with a nil check when a field may be absent:
// data.amount != nil && data.amount > 5.
//
// # Grammar summary
//
//	literals     "text", 'text', 42, 4.5, true, false, nil, [1, 2], {"a": 1}
//	access       data.priority, data["priority"], data.items[0], data.items[1:3], ?.
//	comparison   ==  !=  <  <=  >  >=
//	logic        &&  ||  !  and  or  not, cond ? a : b, a ?? b
//	arithmetic   +  -  *  /  %  **
//	membership   in, not in (arrays and object keys); ranges 1..10 of literals
//	strings      contains, startsWith, endsWith, matches (RE2 regular expression)
//	predicates   all, any, none, one, filter, find, findIndex, findLast,
//	             findLastIndex, count, sum: any(related, .resource == "event"),
//	             where # (or a leading dot) is the current element
//	functions    len, lower, upper, trim, trimPrefix, trimSuffix, split, splitAfter,
//	             indexOf, lastIndexOf, hasPrefix, hasSuffix, string, int, float,
//	             abs, ceil, floor, round, max, min, mean, median, first, last, get,
//	             take, keys, values, reverse, uniq, sort, concat, flatten
//
// The whole expression must be boolean by its type: data.flag alone is refused
// (its type is unknown), data.flag == true is accepted.
//
// # Examples
//
//	data.priority == "High" && data.assignee == nil
//	"vip" in data.tags
//	changes.status.new == "closed"
//	context.actor endsWith "@acme.com"
//	type startsWith "ticket." && trigger != "delete"
//	data.amount > 100
//	data.amount in 100..200
//	len(data.items) > 2
//	any(related, .resource == "event" && .id == "e42")
//	any(data.items, any(.tags, # == "fragile"))
//	data.email matches "^[^@]+@(acme|example)\\.com$"
//
// # Bounds
//
// A condition comes from a tenant and runs on every event, so its cost is bounded by
// construction rather than by a timer, which expr's virtual machine does not have:
//   - the source is at most MaxLength bytes and 1000 syntax nodes;
//   - a range has integer literal bounds and at most 1000 elements;
//   - a predicate nested inside another's must iterate over the current element
//     (any(data.items, any(.tags, ...)) is accepted, any(data.items,
//     any(data.items, ...)) is not), so iterations are linear in the event's size;
//   - let, and the builtins that multiply sizes or keep a computed value per element
//     (repeat, replace, join, toJSON, toBase64, map, reduce, groupBy, sortBy), are
//     refused, so no value outgrows a constant times the event and the source;
//   - the clock and time zone builtins (now, date, duration, timezone) are refused:
//     they read files, and a decision should not depend on when it is made;
//   - expr's memory budget (a million elements per run) remains as a backstop.
//
// What remains is work inside a predicate that scans the whole event, such as
// any(data.items, # in data.others): quadratic in the event's size at worst.
package condition
