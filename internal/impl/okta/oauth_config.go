package okta

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/okta"
)

const (
	fieldOAuth               = "oauth"
	fieldOAuthClientID       = "client_id"
	fieldOAuthPrivateKey     = "private_key"
	fieldOAuthPrivateKeyFile = "private_key_file"
	fieldOAuthKeyID          = "key_id"
	fieldOAuthScopes         = "scopes"
	fieldOAuthDPoP           = "dpop"
)

func oauthField() *service.ConfigField {
	return service.NewObjectField(fieldOAuth,
		service.NewStringField(fieldOAuthClientID).
			Description("The Client ID of the Okta API Services app (Applications → the app → General).").
			Example("${OKTA_CLIENT_ID:}").Example("0oa1b2c3d4e5f6g7h8i9"),
		service.NewStringField(fieldOAuthPrivateKey).Secret().Default("").
			Description("The app's private key, whose public half is registered on the app (General → Client Credentials → Public key / Private key). PEM (PKCS #8, PKCS #1 or SEC 1; RSA of at least 2048 bits, or EC P-256/P-384/P-521), or the private JWK Okta's console generates. `\\n` escapes (from an environment variable) are accepted. Set this or `private_key_file`. Never logged.").
			Example("${OKTA_PRIVATE_KEY}"),
		service.NewStringField(fieldOAuthPrivateKeyFile).Default("").
			Description("A file holding the private key, as for `private_key`. Read once at start.").
			Example("/etc/oktadetect/okta-service-app.pem"),
		service.NewStringField(fieldOAuthKeyID).Default("").
			Description("The KID of the registered public key, sent as the client assertion's `kid`. Needed when the app has several keys; empty uses the JWK's `kid` if the key is a JWK, else none."),
		service.NewStringListField(fieldOAuthScopes).Default([]any{okta.LogsScope}).Advanced().
			Description("Scopes requested for the access token. The app must have been granted each of them (Okta API Scopes tab); reading the System Log needs `okta.logs.read`."),
		service.NewStringAnnotatedEnumField(fieldOAuthDPoP, map[string]string{
			string(okta.DPoPAuto):   "Request plain Bearer tokens until Okta answers that the app requires DPoP, then use DPoP-bound tokens for the rest of the process.",
			string(okta.DPoPAlways): "Always use DPoP: a proof on the first token request, and DPoP-bound tokens. Best for apps with \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" on (the default for new API Services apps): no failed first token request in the org's System Log.",
			string(okta.DPoPNever):  "Never use DPoP: Bearer tokens only.",
		}).Default(string(okta.DPoPAuto)).
			Description("DPoP (RFC 9449) binds the access token to a key that never leaves this process. Proofs are signed with an ES256 key generated at start; nonces Okta asks for (`use_dpop_nonce`) are handled."),
	).Optional().
		Description("Authenticate as an Okta OAuth 2.0 service app (an API Services app), Okta's recommended way for machine access: the OAuth client-credentials grant with a `private_key_jwt` client assertion against `{org_url}/oauth2/v1/token`, for short-lived access tokens scoped to `okta.logs.read`. Tokens are requested when first needed, renewed before they expire, and renewed once more when Okta refuses one. Mutually exclusive with `api_token`.")
}

// parseOAuthConfig reads the oauth block. It reads private_key_file but
// does no network I/O: the token endpoint is first called by the first
// System Log request. okta.NewClient checks the scopes and the DPoP mode.
func parseOAuthConfig(conf *service.ParsedConfig) (*okta.OAuthConfig, error) {
	clientID, err := conf.FieldString(fieldOAuthClientID)
	if err != nil {
		return nil, err
	}
	if clientID = okta.TrimValue(clientID); clientID == "" {
		return nil, errors.New("oauth.client_id is empty: set it to the Client ID of the Okta API Services app, or remove oauth and set api_token")
	}
	key, jwkKID, err := readPrivateKey(conf)
	if err != nil {
		return nil, err
	}
	kid, err := conf.FieldString(fieldOAuthKeyID)
	if err != nil {
		return nil, err
	}
	if kid = okta.TrimValue(kid); kid == "" {
		kid = jwkKID
	}
	scopes, err := conf.FieldStringList(fieldOAuthScopes)
	if err != nil {
		return nil, err
	}
	var clean []string
	for _, s := range scopes {
		clean = append(clean, strings.Fields(s)...)
	}
	mode, err := conf.FieldString(fieldOAuthDPoP)
	if err != nil {
		return nil, err
	}
	return &okta.OAuthConfig{ClientID: clientID, KeyID: kid, Key: key, Scopes: clean, DPoP: okta.DPoPMode(mode)}, nil
}

// readPrivateKey reads and parses private_key or private_key_file, and
// returns the key and the JWK's kid.
func readPrivateKey(conf *service.ParsedConfig) (crypto.Signer, string, error) {
	inline, err := conf.FieldString(fieldOAuthPrivateKey)
	if err != nil {
		return nil, "", err
	}
	file, err := conf.FieldString(fieldOAuthPrivateKeyFile)
	if err != nil {
		return nil, "", err
	}
	var raw []byte
	switch inline, file = strings.TrimSpace(inline), strings.TrimSpace(file); {
	case inline != "" && file != "":
		return nil, "", errors.New("oauth: set either private_key or private_key_file, not both")
	case inline != "":
		raw = []byte(inline)
	case file != "":
		if raw, err = os.ReadFile(file); err != nil {
			return nil, "", fmt.Errorf("oauth.private_key_file: %w", err)
		}
	default:
		return nil, "", errors.New("oauth needs the service app's private key: set private_key (e.g. ${OKTA_PRIVATE_KEY}) or private_key_file")
	}
	key, kid, err := okta.ParsePrivateKey(raw)
	if err != nil {
		if file != "" {
			return nil, "", fmt.Errorf("oauth.private_key_file %s: %w", file, err)
		}
		return nil, "", fmt.Errorf("oauth.private_key: %w", err)
	}
	return key, kid, nil
}

// oauthLintRule flags configs that set both credentials, or neither, and a
// limit or rate_limit_share out of range (the constructor checks them too, for
// values that come from the environment). An empty
// api_token (an unset ${OKTA_API_TOKEN:}) or oauth.client_id counts as
// unset, so configs that take either from the environment stay lint-clean
// (and so does `oktadetect create`'s output, which has both).
const oauthLintRule = `root = match {
  this.api_token.or("") != "" && this.oauth.client_id.or("") != "" => ["set either api_token or oauth, not both"],
  !this.exists("api_token") && !this.exists("oauth") => ["set api_token (an Okta API token) or oauth (an OAuth 2.0 service app)"],
  this.limit.type() == "number" && (this.limit < 1 || this.limit > 1000) => ["limit must be between 1 and 1000, got %v".format(this.limit)],
  this.rate_limit_share.type() == "number" && !(this.rate_limit_share > 0 && this.rate_limit_share <= 1) => ["rate_limit_share must be in (0, 1], got %v".format(this.rate_limit_share)],
}`
