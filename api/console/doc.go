// Package console is the admin console: a small script and style over the
// public HTTP API, embedded in the binary and served by the api stage at
// "/" and the page addresses of SPEC §5.
//
// It owns the HTML shell, app.js and app.css and the routes that serve
// them. It must never read or change state except through the API (the
// script calls /v1 with the user's token), never load anything from
// another origin, and never serve data without a token: the shell and its
// files are the same for everyone.
package console
