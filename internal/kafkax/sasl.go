package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	saslFieldMechanism    = "mechanism"
	saslFieldUsername     = "username"
	saslFieldPassword     = "password"
	saslFieldPasswordFile = "password_file"
	saslFieldToken        = "token"
	saslFieldAWS          = "aws"
	saslFieldAWSKeyID     = "access_key_id"
	saslFieldAWSSecret    = "secret_access_key"
	saslFieldAWSSession   = "session_token"
)

// maxSecretFileBytes bounds a password file: a secret, not a document.
const maxSecretFileBytes = 64 << 10

// SASLField is the sasl field: a list of mechanisms tried in order.
func SASLField() *service.ConfigField {
	return service.NewObjectListField(FieldSASL,
		service.NewStringEnumField(saslFieldMechanism, "none", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM").
			Description("The SASL mechanism. PLAIN sends the password as is, so use it only over TLS. OAUTHBEARER sends `token`; AWS_MSK_IAM signs with AWS credentials (`aws`). `none` skips the entry, so a config can take the mechanism from an environment variable (`mechanism: ${KAFKA_SASL_MECHANISM:none}`)."),
		service.NewStringField(saslFieldUsername).Default("").
			Description("The user to authenticate as (PLAIN, SCRAM)."),
		service.NewStringField(saslFieldPassword).Default("").
			Description("The user's password (PLAIN, SCRAM). Benthos pastes `${VAR}` into the config text before it parses the YAML, so a password from an environment variable must be quoted (`password: '${KAFKA_SASL_PASSWORD}'`), or a ` #` in it starts a YAML comment; `password_file` avoids the question.").
			Secret(),
		service.NewStringField(saslFieldPasswordFile).Default("").
			Description("A file holding the password (e.g. a mounted Kubernetes secret), read at every authentication so a rotated secret is picked up; one trailing newline is ignored. Exclusive with `password`.").
			Example("/run/secrets/kafka-password"),
		service.NewStringField(saslFieldToken).Default("").
			Description("The OAuth bearer token (OAUTHBEARER).").
			Secret(),
		service.NewObjectField(saslFieldAWS,
			service.NewStringField(saslFieldAWSKeyID).Default("").
				Description("The access key id; empty: the environment's `AWS_ACCESS_KEY_ID`."),
			service.NewStringField(saslFieldAWSSecret).Default("").
				Description("The secret access key; empty: the environment's `AWS_SECRET_ACCESS_KEY`.").
				Secret(),
			service.NewStringField(saslFieldAWSSession).Default("").
				Description("The session token of temporary credentials; empty: the environment's `AWS_SESSION_TOKEN` (if any).").
				Secret(),
		).Description("AWS credentials for AWS_MSK_IAM. Static credentials or the standard environment variables, read at every authentication; instance roles and profiles are not looked up.").
			Optional(),
	).
		Description("SASL authentication. Mechanisms are tried in order until the broker accepts one.").
		Optional().
		Advanced()
}

func saslMechanisms(conf *service.ParsedConfig) ([]sasl.Mechanism, error) {
	if !conf.Contains(FieldSASL) {
		return nil, nil
	}
	entries, err := conf.FieldObjectList(FieldSASL)
	if err != nil {
		return nil, err
	}
	mechs := make([]sasl.Mechanism, 0, len(entries))
	for i, e := range entries {
		m, err := saslMechanism(e)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", FieldSASL, i, err)
		}
		if m != nil {
			mechs = append(mechs, m)
		}
	}
	return mechs, nil
}

// saslMechanism builds one entry's mechanism; nil for `none`.
func saslMechanism(conf *service.ParsedConfig) (sasl.Mechanism, error) {
	name, err := conf.FieldString(saslFieldMechanism)
	if err != nil {
		return nil, err
	}
	switch name {
	case "none":
		return nil, nil
	case "OAUTHBEARER":
		return oauthMechanism(conf)
	case "AWS_MSK_IAM":
		return awsMechanism(conf)
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		return passwordMechanism(conf, name)
	}
	return nil, fmt.Errorf("unknown mechanism %q", name)
}

func passwordMechanism(conf *service.ParsedConfig, name string) (sasl.Mechanism, error) {
	user, err := conf.FieldString(saslFieldUsername)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("%s is empty", saslFieldUsername)
	}
	password, err := passwordSource(conf)
	if err != nil {
		return nil, err
	}
	switch name {
	case "PLAIN":
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := password()
			return plain.Auth{User: user, Pass: p}, err
		}), nil
	case "SCRAM-SHA-256":
		return scram.Sha256(func(context.Context) (scram.Auth, error) {
			p, err := password()
			return scram.Auth{User: user, Pass: p}, err
		}), nil
	}
	return scram.Sha512(func(context.Context) (scram.Auth, error) {
		p, err := password()
		return scram.Auth{User: user, Pass: p}, err
	}), nil
}

// passwordSource returns how to get the password at authentication time:
// the field's value, or password_file read again each time.
func passwordSource(conf *service.ParsedConfig) (func() (string, error), error) {
	pass, err := conf.FieldString(saslFieldPassword)
	if err != nil {
		return nil, err
	}
	file, err := conf.FieldString(saslFieldPasswordFile)
	if err != nil {
		return nil, err
	}
	if file == "" {
		return func() (string, error) { return pass, nil }, nil
	}
	if pass != "" {
		return nil, fmt.Errorf("%s and %s are exclusive: keep one", saslFieldPassword, saslFieldPasswordFile)
	}
	read := func() (string, error) { return readSecretFile(file) }
	if _, err := read(); err != nil { // a wrong path fails at startup, not at connect
		return nil, err
	}
	return read, nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", saslFieldPasswordFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading %s %q: %w", saslFieldPasswordFile, path, err)
	}
	if len(b) > maxSecretFileBytes {
		return "", fmt.Errorf("%s %q is larger than %d bytes: is it the password?", saslFieldPasswordFile, path, maxSecretFileBytes)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s %q is empty", saslFieldPasswordFile, path)
	}
	return s, nil
}

func oauthMechanism(conf *service.ParsedConfig) (sasl.Mechanism, error) {
	token, err := conf.FieldString(saslFieldToken)
	if err != nil {
		return nil, err
	}
	if token = strings.TrimSpace(token); token == "" {
		return nil, fmt.Errorf("OAUTHBEARER needs %s", saslFieldToken)
	}
	return oauth.Auth{Token: token}.AsMechanism(), nil
}

func awsMechanism(conf *service.ParsedConfig) (sasl.Mechanism, error) {
	var id, secret, session string
	if conf.Contains(saslFieldAWS) {
		a := conf.Namespace(saslFieldAWS)
		var err error
		if id, err = a.FieldString(saslFieldAWSKeyID); err != nil {
			return nil, err
		}
		if secret, err = a.FieldString(saslFieldAWSSecret); err != nil {
			return nil, err
		}
		if session, err = a.FieldString(saslFieldAWSSession); err != nil {
			return nil, err
		}
	}
	if (id == "") != (secret == "") {
		return nil, fmt.Errorf("%s.%s and %s.%s go together: set both, or neither to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", saslFieldAWS, saslFieldAWSKeyID, saslFieldAWS, saslFieldAWSSecret)
	}
	return aws.ManagedStreamingIAM(func(context.Context) (aws.Auth, error) {
		if id != "" {
			return aws.Auth{AccessKey: id, SecretKey: secret, SessionToken: session}, nil
		}
		a := aws.Auth{AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
		if a.AccessKey == "" || a.SecretKey == "" {
			return a, errors.New("AWS_MSK_IAM: no credentials: set sasl aws.access_key_id and aws.secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		return a, nil
	}), nil
}
