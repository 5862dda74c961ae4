package okta

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/okta"
)

const (
	fieldOrgURL          = "org_url"
	fieldAPIToken        = "api_token"
	fieldPollInterval    = "poll_interval"
	fieldInitialLookback = "initial_lookback"
	fieldLimit           = "limit"
	fieldFilter          = "filter"
	fieldQ               = "q"
	fieldCheckpointCache = "checkpoint_cache"
	fieldCheckpointKey   = "checkpoint_key"
	fieldRateLimitShare  = "rate_limit_share"
	fieldTimeout         = "timeout"
	fieldTLS             = "tls"
	fieldBackoff         = "backoff"
)

// defaultBackoff is the backoff field's default: retries of the same link
// from a second apart to a minute apart, never giving up (giving up would
// skip events).
func defaultBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = time.Minute
	b.MaxElapsedTime = 0
	return b
}

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Reads the System Log of one Okta org, every event exactly once, within the org's rate limits.").
		Description(`
Polls Okta's `+"`GET /api/v1/logs`"+` the way Okta documents as gap-free: the first request is a
polling request (`+"`since`"+` = now − `+"`initial_lookback`"+`, no `+"`until`"+`, ascending), and after that the
input only follows the `+"`rel=\"next\"`"+` link exactly as Okta sent it. Each page is one batch; each
message is one event's JSON exactly as Okta sent it. A tick keeps following next links while pages
are full (`+"`limit`"+` events) and ends at a shorter page, whose next link is where the next tick starts,
so an idle org, or one whose events trickle in, costs one request per `+"`poll_interval`"+`.

The next link is stored in `+"`checkpoint_cache`"+` only after its page and every earlier page are
acknowledged by the output, so a crash never skips events; at most the pages in flight are read
again after a restart, and events already delivered are dropped by `+"`uuid`"+`. With no stored cursor,
the first one is saved before anything is read: a cache that cannot store it (a file cache whose
directory does not exist) stops the input with an error naming the fix, instead of events flowing
that a restart would read again.

The input never uses more than `+"`rate_limit_share`"+` of the org's System Log rate limit window, waits
for the window's reset on 429 (measured against Okta's `+"`Date`"+` header, not the local clock), and
retries 5xx and network errors on the same link with backoff. No wait taken from Okta's headers
exceeds an hour: headers that are missing or cannot be believed (a reset more than an hour from
`+"`Date`"+`, or before it; a limit of 0) are not used, and the input keeps to a default limit of 60
requests per minute times `+"`rate_limit_share`"+`. Waits over a minute are logged with their reason.

The input is connected (and `+"`/ready`"+` ready) only while the org can be read: after a 401/403 or a
request that got no answer it is not, until a retry, on the same slow schedule, is answered.

Credentials are only ever sent to `+"`org_url`"+`'s origin: a next link to another host is refused. The
credentials sent lately are redacted from every error and log line, including text a server echoes.

### Metadata

- `+"`okta_uuid`"+`, `+"`okta_event_type`"+`, `+"`okta_published`"+`: the event's `+"`uuid`"+`, `+"`eventType`"+` and `+"`published`"+`.
- `+"`okta_org`"+`: the org's host, e.g. `+"`acme.okta.com`"+`.

### Metrics

`+"`okta_requests_total`"+` (label `+"`status`"+`), `+"`okta_events_total`"+`, `+"`okta_duplicates_dropped_total`"+`,
`+"`okta_rate_limit_remaining`"+`, `+"`okta_lag_seconds`"+` (now − newest `+"`published`"+` read, refreshed every second, so
it grows while nothing is read), `+"`okta_last_success_timestamp_seconds`"+` (unix time of the last 200),
`+"`okta_cursor_commits_total`"+`, `+"`okta_checkpoint_errors_total`"+`, `+"`okta_response_errors_total`"+` (label
`+"`reason`"+`: a 200 that could not be used — `+"`empty_body`"+`, `+"`not_json_array`"+`, `+"`invalid_json`"+`,
`+"`invalid_event`"+`, `+"`too_large`"+`, `+"`too_deep`"+`, `+"`bad_next_link`"+`, `+"`foreign_next_link`"+`, `+"`missing_next_link`"+`),
`+"`okta_clock_skew_seconds`"+` (Okta's `+"`Date`"+` − the local clock), `+"`okta_unacked_pages`"+` and
`+"`okta_unacked_oldest_seconds`"+` (pages waiting for the output's acknowledgement; a warning is logged
when the oldest has waited 15 s).`).
		Fields(
			service.NewStringField(fieldOrgURL).
				Description("The Okta org, as an origin: `https://<org>.okta.com`, not the Admin Console's `<org>-admin` host. Only https is allowed, except plain http to loopback hosts (for tests and the simulator).").
				Example("https://acme.okta.com").Example("${OKTA_ORG_URL}"),
			service.NewStringField(fieldAPIToken).Secret().Optional().
				Description("An Okta API token (Security → API → Tokens), sent as `Authorization: SSWS <token>`: set the token alone, without `SSWS `. Create it as an admin with the Read-only Administrator role. Surrounding whitespace and a trailing newline are trimmed. Never logged. Set this or `oauth`; an empty value counts as unset.").
				Example("${OKTA_API_TOKEN:}"),
			oauthField(),
			service.NewDurationField(fieldPollInterval).Default("1m").
				Description("How often to poll once the log is drained (a tick ends at a page shorter than `limit`)."),
			service.NewDurationField(fieldInitialLookback).Default("1h").
				Description("With no stored cursor, the first request asks for events published since now minus this. Okta keeps 90 days."),
			service.NewIntField(fieldLimit).Default(1000).
				Description("Events per page, 1 to 1000."),
			service.NewStringField(fieldFilter).Default("").Advanced().
				Description("An Okta System Log `filter` expression, passed through.").
				Example(`eventType eq "user.session.start"`),
			service.NewStringField(fieldQ).Default("").Advanced().
				Description("Okta System Log keyword search `q`, passed through."),
			service.NewStringField(fieldCheckpointCache).Default("").
				Description("The label of a cache resource where the cursor is stored, so a restart resumes where the last acknowledged page ended. Without it the cursor lives in memory and a restart starts again from `initial_lookback`.").
				Example("okta_cursor"),
			service.NewStringField(fieldCheckpointKey).Default("").
				Description("The cache key for the cursor. Empty: `okta-cursor-<org host>`."),
			service.NewFloatField(fieldRateLimitShare).Default(0.5).
				Description("The fraction (0 < share ≤ 1) of the org's System Log rate limit window this input may use. The rest is left to the admin console and other clients of the org."),
			service.NewDurationField(fieldTimeout).Default("30s").Advanced().
				Description("Timeout of one HTTP request."),
			service.NewTLSField(fieldTLS).Advanced().
				Description("TLS settings, e.g. a custom CA for a TLS-inspecting proxy. Proxies are taken from HTTPS_PROXY/NO_PROXY."),
			service.NewBackOffField(fieldBackoff, false, defaultBackoff()).Advanced().
				Description("Backoff between retries of the same link after 5xx, network errors or malformed responses."),
		).
		Example("Stdout", "Read an org and print its events.", `
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    api_token: ${OKTA_API_TOKEN}
    checkpoint_cache: okta_cursor
cache_resources:
  - label: okta_cursor
    file:
      directory: ./data
output:
  stdout: {}
`).
		Example("OAuth service app", "Authenticate as an Okta API Services app with a private key, Okta's recommended way; DPoP is used when the app requires it.", `
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    oauth:
      client_id: ${OKTA_CLIENT_ID}
      private_key_file: /etc/oktadetect/okta-service-app.pem
      key_id: ${OKTA_KEY_ID:}
      scopes: [ okta.logs.read ]
      dpop: auto
    checkpoint_cache: okta_cursor
cache_resources:
  - label: okta_cursor
    file:
      directory: ./data
output:
  stdout: {}
`).
		LintRule(oauthLintRule)
}

func init() {
	err := service.RegisterBatchInput("okta_system_log", inputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			in, err := newSystemLogInput(conf, mgr, okta.SystemClock{})
			if err != nil {
				return nil, err
			}
			return service.AutoRetryNacksBatched(in), nil
		})
	if err != nil {
		panic(err)
	}
}

// inputConfig is the validated configuration of okta_system_log.
type inputConfig struct {
	org             *url.URL
	apiToken        string            // set this or oauth
	oauth           *okta.OAuthConfig // set this or apiToken
	pollInterval    time.Duration
	initialLookback time.Duration
	limit           int
	filter, q       string
	checkpointCache string
	checkpointKey   string
	share           float64
	timeout         time.Duration
}

func parseInputConfig(conf *service.ParsedConfig) (*inputConfig, error) {
	c := &inputConfig{}
	raw, err := conf.FieldString(fieldOrgURL)
	if err != nil {
		return nil, err
	}
	if c.org, err = okta.ParseOrgURL(raw); err != nil {
		return nil, err
	}
	if c.apiToken, c.oauth, err = parseAuth(conf); err != nil {
		return nil, err
	}
	if c.pollInterval, err = conf.FieldDuration(fieldPollInterval); err != nil {
		return nil, err
	}
	if c.pollInterval <= 0 {
		return nil, fmt.Errorf("poll_interval must be positive, got %v", c.pollInterval)
	}
	if c.initialLookback, err = conf.FieldDuration(fieldInitialLookback); err != nil {
		return nil, err
	}
	if c.initialLookback < 0 {
		return nil, fmt.Errorf("initial_lookback must not be negative, got %v", c.initialLookback)
	}
	if c.limit, err = conf.FieldInt(fieldLimit); err != nil {
		return nil, err
	}
	if c.limit < 1 || c.limit > 1000 {
		return nil, fmt.Errorf("limit must be between 1 and 1000, got %d", c.limit)
	}
	if c.filter, err = conf.FieldString(fieldFilter); err != nil {
		return nil, err
	}
	if c.q, err = conf.FieldString(fieldQ); err != nil {
		return nil, err
	}
	if c.checkpointCache, err = conf.FieldString(fieldCheckpointCache); err != nil {
		return nil, err
	}
	if c.checkpointKey, err = conf.FieldString(fieldCheckpointKey); err != nil {
		return nil, err
	}
	if c.checkpointKey == "" {
		c.checkpointKey = "okta-cursor-" + strings.NewReplacer(":", "_", "[", "", "]", "").Replace(c.org.Host)
	}
	if c.share, err = conf.FieldFloat(fieldRateLimitShare); err != nil {
		return nil, err
	}
	if !(c.share > 0 && c.share <= 1) {
		return nil, fmt.Errorf("rate_limit_share must be in (0, 1], got %v", c.share)
	}
	if c.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return nil, err
	}
	return c, nil
}

// parseAuth picks the credential: api_token or oauth, exactly one.
// okta.NewClient checks the token's shape.
func parseAuth(conf *service.ParsedConfig) (apiToken string, oauth *okta.OAuthConfig, err error) {
	hasToken := conf.Contains(fieldAPIToken)
	token := ""
	if hasToken {
		if token, err = conf.FieldString(fieldAPIToken); err != nil {
			return "", nil, err
		}
		token = okta.TrimValue(token)
	}
	// An oauth block whose client_id is empty (an unset ${OKTA_CLIENT_ID:})
	// counts as unset next to a token, as an empty api_token does next to
	// oauth: one config can take either credential from the environment.
	oauthSet := conf.Contains(fieldOAuth) && oauthClientID(conf) != ""
	switch {
	case oauthSet && token != "":
		return "", nil, errors.New("set either api_token or oauth, not both")
	case token == "" && conf.Contains(fieldOAuth):
		oauth, err := parseOAuthConfig(conf.Namespace(fieldOAuth))
		return "", oauth, err
	case hasToken && token == "":
		return "", nil, errors.New("api_token is empty: set it to an Okta API token (e.g. api_token: ${OKTA_API_TOKEN}), or configure oauth for a service app")
	case !hasToken:
		return "", nil, errors.New("no credentials: set api_token (an Okta API token) or oauth (an OAuth 2.0 service app)")
	}
	return token, nil, nil
}

// oauthClientID is oauth.client_id, trimmed; empty when unset or unreadable
// (parseOAuthConfig reports the latter).
func oauthClientID(conf *service.ParsedConfig) string {
	id, err := conf.FieldString(fieldOAuth, fieldOAuthClientID)
	if err != nil {
		return ""
	}
	return okta.TrimValue(id)
}

// maxUnackedPages bounds the pages read but not yet committed (acknowledged
// together with every earlier page), and so the input's memory, whatever the
// backlog: reading waits while this many are outstanding.
const maxUnackedPages = 64

// systemLogInput is the okta_system_log input. ReadBatch is called by one
// goroutine at a time; acks arrive on others, and only touch the tracker.
type systemLogInput struct {
	cfg     *inputConfig
	client  *okta.Client
	res     *service.Resources
	log     *service.Logger
	metrics inputMetrics
	clock   okta.Clock // the client's too: tests run both on a fake one

	tracker   ackTracker
	cursorSeq uint64 // the last commit's number; written under the tracker's lock

	// Reader state, owned by the ReadBatch goroutine (Connect runs on it too).
	loaded        bool               // the cursor was read from the cache (or set from initial_lookback)
	connected     bool               // the org answered the last request (see probe)
	down          *okta.RequestError // why the org cannot be read, while !connected after a failure
	downReported  bool               // down was returned to Benthos (which logs it)
	probed        *okta.Page         // the page Connect's probe read, accepted by the next ReadBatch
	rateDistrust  string             // why Okta's rate headers are not used, "" while they are
	waitAnnounced bool               // the coming rate-limit wait was already logged
	next          string             // the link to request next
	tickStart     time.Time
	idle          bool // the last page was short: wait for the next tick
	budget        *okta.RateBudget
	seen          *recentUUIDs
	transientBoff *backoff.ExponentialBackOff
	configFails   int
	skewed        bool // the last Date was beyond clockSkewWarning

	stopWatch context.CancelFunc // ends watchAcks
	newest    atomic.Int64       // unix nanoseconds of the newest published read, for okta_lag_seconds
}

// userAgent is sent with every request to Okta.
const userAgent = "oktadetect okta_system_log"

// newSystemLogInput validates the config and builds the input; it does no
// I/O (Connect does). clock is the input's and its client's time.
func newSystemLogInput(conf *service.ParsedConfig, res *service.Resources, clock okta.Clock) (*systemLogInput, error) {
	cfg, err := parseInputConfig(conf)
	if err != nil {
		return nil, err
	}
	tlsConf, err := conf.FieldTLS(fieldTLS)
	if err != nil {
		return nil, err
	}
	boff, err := conf.FieldBackOff(fieldBackoff)
	if err != nil {
		return nil, err
	}
	boff.MaxElapsedTime = 0 // never give up: giving up would skip events
	if cfg.checkpointCache != "" && !res.HasCache(cfg.checkpointCache) {
		return nil, fmt.Errorf("checkpoint_cache %q is not a cache resource: declare it under cache_resources", cfg.checkpointCache)
	}
	client, err := okta.NewClient(okta.Config{
		Org:        cfg.org,
		APIToken:   cfg.apiToken,
		OAuth:      cfg.oauth,
		HTTPClient: okta.NewHTTPClient(tlsConf, cfg.timeout),
		UserAgent:  userAgent,
		Logger:     res.Logger(),
		Clock:      clock,
	})
	if err != nil {
		return nil, err
	}
	return &systemLogInput{
		cfg:           cfg,
		client:        client,
		res:           res,
		log:           res.Logger(),
		metrics:       newInputMetrics(res.Metrics()),
		clock:         clock,
		budget:        okta.NewRateBudget(cfg.share),
		seen:          newRecentUUIDs(rememberedUUIDs),
		transientBoff: boff,
	}, nil
}

// Connect loads the cursor (once), then probes the org with the cursor's
// request: the input counts as connected, and /ready as ready, only while the
// org can be read. After a failure that needs a human (401, 403) or a host
// that does not answer, ReadBatch returns ErrNotConnected and Benthos calls
// Connect again, which reports the cause and probes on the same schedule the
// reads followed (configRetryDelays, the backoff), so Okta is never hammered.
// The cursor, the pages in flight and the de-duplication set survive.
func (in *systemLogInput) Connect(ctx context.Context) error {
	if in.connected {
		return nil
	}
	if !in.loaded {
		if err := in.start(ctx); err != nil {
			return err
		}
	}
	return in.probe(ctx)
}

// ReadBatch returns the next non-empty page of events. It blocks through idle
// ticks, rate-limit waits and retries. When the org cannot be read (401/403,
// no answer) it returns ErrNotConnected, and Connect reports the cause and
// probes again; other errors are only cancellation.
func (in *systemLogInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if !in.connected {
		return nil, nil, service.ErrNotConnected
	}
	if p := in.probed; p != nil {
		in.probed = nil
		if batch, ack := in.accept(p); len(batch) > 0 {
			return batch, ack, nil
		}
	}
	for {
		if err := in.tracker.waitBelow(ctx, maxUnackedPages); err != nil {
			return nil, nil, err
		}
		if err := in.waitTurn(ctx); err != nil {
			return nil, nil, err
		}
		p, err := in.fetch(ctx)
		if err != nil {
			down, reportErr := in.onFailure(err)
			if down != nil {
				// The org cannot be read: Benthos marks the input not
				// connected (so /ready says so) and calls Connect, which
				// reports the cause and probes on the retry schedule.
				in.goDown(down)
				return nil, nil, service.ErrNotConnected
			}
			if reportErr != nil {
				return nil, nil, reportErr
			}
			continue
		}
		if batch, ack := in.accept(p); len(batch) > 0 {
			return batch, ack, nil
		}
	}
}

// Close has nothing to flush: the cursor is written as acks arrive.
func (in *systemLogInput) Close(ctx context.Context) error {
	if in.stopWatch != nil {
		in.stopWatch()
	}
	in.client.CloseIdleConnections()
	return nil
}
