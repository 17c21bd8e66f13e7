package schemas

import (
	"fmt"
	"net/url"
	"strings"
)

// Auth types (SPEC §3).
const (
	AuthNone         = "none"
	AuthBasic        = "basic"
	AuthBearer       = "bearer"
	AuthAPIKey       = "api_key"
	AuthOAuth2Client = "oauth2_client_credentials"
)

// Auth is how the sender authenticates to an endpoint. Credentials
// (password, token, value, client_secret) are write-only: the API shows
// PublicAuth, and stored requests mask them.
type Auth struct {
	Type string `json:"type"`
	// basic
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// bearer
	Token string `json:"token,omitempty"`
	// api_key: the header that carries the value
	Header string `json:"header,omitempty"`
	Value  string `json:"value,omitempty"`
	// oauth2_client_credentials
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

// PublicAuth is Auth without its credentials.
type PublicAuth struct {
	Type     string   `json:"type"`
	Username string   `json:"username,omitempty"`
	Header   string   `json:"header,omitempty"`
	TokenURL string   `json:"token_url,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// HasCredentials is true when the write-only credentials are set.
	HasCredentials bool `json:"has_credentials"`
}

// Public returns the API view; nil for no auth.
func (a *Auth) Public() *PublicAuth {
	if a == nil {
		return nil
	}
	return &PublicAuth{
		Type: a.Type, Username: a.Username, Header: a.Header, TokenURL: a.TokenURL,
		ClientID: a.ClientID, Scopes: a.Scopes,
		HasCredentials: a.Password != "" || a.Token != "" || a.Value != "" || a.ClientSecret != "",
	}
}

// Secrets returns the credential values, for masking in logs and stored
// requests.
func (a *Auth) Secrets() []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, s := range []string{a.Password, a.Token, a.Value, a.ClientSecret} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate checks that the auth type is known and has what it needs, and
// nothing that belongs to another type.
func (a *Auth) Validate() error {
	if a == nil {
		return nil
	}
	bad := func(field, msg string, args ...any) error {
		return &FieldError{Field: "auth." + field, Message: fmt.Sprintf(msg, args...)}
	}
	need := func(pairs ...string) error {
		for i := 0; i < len(pairs); i += 2 {
			if strings.TrimSpace(pairs[i+1]) == "" {
				return bad(pairs[i], "is required for auth type %s", a.Type)
			}
		}
		return nil
	}
	var err error
	switch a.Type {
	case AuthNone:
	case AuthBasic:
		err = need("username", a.Username, "password", a.Password)
		if err == nil && strings.Contains(a.Username, ":") {
			err = bad("username", "must not contain a colon")
		}
	case AuthBearer:
		err = need("token", a.Token)
	case AuthAPIKey:
		err = need("header", a.Header, "value", a.Value)
		if err == nil && (!validHeaderName(a.Header) || reservedHeaders[strings.ToLower(a.Header)]) {
			err = bad("header", "%q cannot carry an API key", a.Header)
		}
	case AuthOAuth2Client:
		err = need("token_url", a.TokenURL, "client_id", a.ClientID, "client_secret", a.ClientSecret)
		if err == nil {
			if u, perr := url.Parse(a.TokenURL); perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				err = bad("token_url", "must be an http or https URL")
			}
		}
	default:
		return bad("type", "must be one of none, basic, bearer, api_key, oauth2_client_credentials")
	}
	if err != nil {
		return err
	}
	for _, v := range a.Secrets() {
		if strings.ContainsAny(v, "\r\n\x00") {
			return bad("type", "credentials must not contain line breaks")
		}
	}
	return a.onlyOwnFields()
}

// onlyOwnFields refuses fields of another auth type, which would otherwise
// be accepted and ignored.
func (a *Auth) onlyOwnFields() error {
	own := map[string][]string{
		AuthBasic:        {"username", "password"},
		AuthBearer:       {"token"},
		AuthAPIKey:       {"header", "value"},
		AuthOAuth2Client: {"token_url", "client_id", "client_secret", "scopes"},
	}[a.Type]
	set := map[string]bool{
		"username": a.Username != "", "password": a.Password != "", "token": a.Token != "",
		"header": a.Header != "", "value": a.Value != "", "token_url": a.TokenURL != "",
		"client_id": a.ClientID != "", "client_secret": a.ClientSecret != "", "scopes": len(a.Scopes) > 0,
	}
	for field, isSet := range set {
		if isSet && !contains(own, field) {
			return &FieldError{Field: "auth." + field, Message: "does not belong to auth type " + a.Type}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
