package api

import (
	"net/http"
	"strconv"

	"github.com/hookline/hookline/schemas"
)

// openAPIPath serves the document without a token: it holds no tenant's
// data, and a client needs it before it has a token to use.
const openAPIPath = "/v1/openapi.yaml"

// serveOpenAPI answers schemas.OpenAPI, the document of this API.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(schemas.OpenAPI)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// A failed write means the client went away; there is no one to tell.
	_, _ = w.Write(schemas.OpenAPI)
}
