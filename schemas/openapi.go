package schemas

import _ "embed"

// OpenAPI is the OpenAPI 3.0 document of the HTTP API (SPEC §5), in YAML:
// every route package api serves, with its parameters, bodies, answers and
// errors. Package api serves it at GET /v1/openapi.yaml; its tests check
// that it matches the router and the handlers.
//
//go:embed openapi.yaml
var OpenAPI []byte
