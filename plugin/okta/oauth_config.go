package okta

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/redpanda-data/benthos/v4/public/service"
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

// dpopMode is the oauth.dpop setting.
type dpopMode string

const (
	dpopAuto   dpopMode = "auto"
	dpopAlways dpopMode = "always"
	dpopNever  dpopMode = "never"
)

// logsScope is the only scope reading the System Log needs.
const logsScope = "okta.logs.read"

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
		service.NewStringListField(fieldOAuthScopes).Default([]any{logsScope}).Advanced().
			Description("Scopes requested for the access token. The app must have been granted each of them (Okta API Scopes tab); reading the System Log needs `okta.logs.read`."),
		service.NewStringAnnotatedEnumField(fieldOAuthDPoP, map[string]string{
			string(dpopAuto):   "Request plain Bearer tokens until Okta answers that the app requires DPoP, then use DPoP-bound tokens for the rest of the process.",
			string(dpopAlways): "Always use DPoP: a proof on the first token request, and DPoP-bound tokens. Best for apps with \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" on (the default for new API Services apps): no failed first token request in the org's System Log.",
			string(dpopNever):  "Never use DPoP: Bearer tokens only.",
		}).Default(string(dpopAuto)).
			Description("DPoP (RFC 9449) binds the access token to a key that never leaves this process. Proofs are signed with an ES256 key generated at start; nonces Okta asks for (`use_dpop_nonce`) are handled."),
	).Optional().
		Description("Authenticate as an Okta OAuth 2.0 service app (an API Services app), Okta's recommended way for machine access: the OAuth client-credentials grant with a `private_key_jwt` client assertion against `{org_url}/oauth2/v1/token`, for short-lived access tokens scoped to `okta.logs.read`. Tokens are requested when first needed, renewed before they expire, and renewed once more when Okta refuses one. Mutually exclusive with `api_token`.")
}

// parseOAuthConfig validates the oauth block. It reads private_key_file but
// does no network I/O: the token endpoint is first called by the first
// System Log request.
func parseOAuthConfig(conf *service.ParsedConfig, org *url.URL) (*oauthAuth, error) {
	clientID, err := conf.FieldString(fieldOAuthClientID)
	if err != nil {
		return nil, err
	}
	if clientID = trimValue(clientID); clientID == "" {
		return nil, errors.New("oauth.client_id is empty: set it to the Client ID of the Okta API Services app, or remove oauth and set api_token")
	}
	inline, err := conf.FieldString(fieldOAuthPrivateKey)
	if err != nil {
		return nil, err
	}
	file, err := conf.FieldString(fieldOAuthPrivateKeyFile)
	if err != nil {
		return nil, err
	}
	var raw []byte
	switch inline, file = strings.TrimSpace(inline), strings.TrimSpace(file); {
	case inline != "" && file != "":
		return nil, errors.New("oauth: set either private_key or private_key_file, not both")
	case inline != "":
		raw = []byte(inline)
	case file != "":
		if raw, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("oauth.private_key_file: %w", err)
		}
	default:
		return nil, errors.New("oauth needs the service app's private key: set private_key (e.g. ${OKTA_PRIVATE_KEY}) or private_key_file")
	}
	key, jwkKID, err := parsePrivateKey(raw)
	if err != nil {
		if file != "" {
			return nil, fmt.Errorf("oauth.private_key_file %s: %w", file, err)
		}
		return nil, fmt.Errorf("oauth.private_key: %w", err)
	}
	kid, err := conf.FieldString(fieldOAuthKeyID)
	if err != nil {
		return nil, err
	}
	if kid = trimValue(kid); kid == "" {
		kid = jwkKID
	}
	scopes, err := conf.FieldStringList(fieldOAuthScopes)
	if err != nil {
		return nil, err
	}
	var clean []string
	for _, s := range scopes {
		for _, f := range strings.Fields(s) {
			clean = append(clean, f)
		}
	}
	if len(clean) == 0 {
		return nil, fmt.Errorf("oauth.scopes is empty: reading the System Log needs %s", logsScope)
	}
	mode, err := conf.FieldString(fieldOAuthDPoP)
	if err != nil {
		return nil, err
	}
	switch dpopMode(mode) {
	case dpopAuto, dpopAlways, dpopNever:
	default:
		return nil, fmt.Errorf("oauth.dpop must be auto, always or never, got %q", mode)
	}
	return newOAuthAuth(oauthSettings{
		org:      org,
		clientID: clientID,
		keyID:    kid,
		key:      key,
		scopes:   clean,
		dpop:     dpopMode(mode),
	})
}

// parsePrivateKey reads a PEM or JWK private key. Its errors never quote the
// key.
func parsePrivateKey(raw []byte) (crypto.Signer, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		return parseJWKPrivateKey(raw)
	}
	if !bytes.Contains(raw, []byte("-----BEGIN")) {
		return nil, "", errors.New("not a PEM block or a JWK: paste the whole key, -----BEGIN PRIVATE KEY----- line included")
	}
	if !bytes.Contains(raw, []byte("\n")) && bytes.Contains(raw, []byte(`\n`)) {
		raw = bytes.ReplaceAll(raw, []byte(`\n`), []byte("\n"))
	}
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, "", errors.New("no private key found in the PEM data")
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, "", errors.New("the private key is encrypted: store it unencrypted (e.g. openssl pkcs8 -topk8 -nocrypt) and protect the file or variable instead")
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, "", fmt.Errorf("found a %s, not the private key: the public key belongs on the Okta app, this field needs the private key", strings.ToLower(block.Type))
		default:
			continue // e.g. EC PARAMETERS
		}
		if err != nil {
			return nil, "", fmt.Errorf("the %s block does not parse (%s)", block.Type, keyParseReason(err))
		}
		s, err := checkKey(k)
		return s, "", err
	}
}

// keyParseReason names what x509 disliked without echoing any key bytes.
func keyParseReason(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

func parseJWKPrivateKey(raw []byte) (crypto.Signer, string, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, "", errors.New("the JWK does not parse: expect the private JWK Okta generated (with \"d\")")
	}
	if jwk.IsPublic() {
		return nil, "", errors.New("the JWK is a public key: the public key belongs on the Okta app, this field needs the private key (with \"d\")")
	}
	s, err := checkKey(jwk.Key)
	return s, jwk.KeyID, err
}

// checkKey accepts the key types Okta verifies client assertions with.
func checkKey(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits: Okta needs at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, errors.New("the EC key is on an unsupported curve: use P-256, P-384 or P-521")
	default:
		return nil, fmt.Errorf("unsupported key type %T: use an RSA or EC (P-256/P-384/P-521) key", k)
	}
}

// assertionAlgorithm is the JWS algorithm for the client assertion.
func assertionAlgorithm(k crypto.Signer) jose.SignatureAlgorithm {
	if ec, ok := k.(*ecdsa.PrivateKey); ok {
		switch ec.Curve {
		case elliptic.P384():
			return jose.ES384
		case elliptic.P521():
			return jose.ES512
		}
		return jose.ES256
	}
	return jose.RS256
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
