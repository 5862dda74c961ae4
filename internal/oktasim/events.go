package oktasim

import (
	"encoding/json"
	"time"
)

// TimeFormat is how Okta renders LogEvent.published: RFC 3339, UTC,
// millisecond precision.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// LogEvent is Okta's System Log event object. Okta serialises every key of
// the shape and uses null for what it does not know, so most fields carry no
// omitempty: nil pointers and slices render as null, as in real responses.
type LogEvent struct {
	UUID                  string                 `json:"uuid"`
	Published             time.Time              `json:"published"`
	EventType             string                 `json:"eventType"`
	Version               string                 `json:"version"`
	Severity              string                 `json:"severity"`
	LegacyEventType       string                 `json:"legacyEventType"` // "" renders as null
	DisplayMessage        string                 `json:"displayMessage"`
	Actor                 Actor                  `json:"actor"`
	Client                *Client                `json:"client"`
	Device                *Device                `json:"device"`
	AuthenticationContext *AuthenticationContext `json:"authenticationContext"`
	Outcome               *Outcome               `json:"outcome"`
	Target                []Target               `json:"target"`
	Transaction           *Transaction           `json:"transaction"`
	DebugContext          *DebugContext          `json:"debugContext"`
	SecurityContext       *SecurityContext       `json:"securityContext"`
	Request               *EventRequest          `json:"request"`
}

// Actor is who performed the action.
type Actor struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	AlternateID string         `json:"alternateId"`
	DisplayName string         `json:"displayName"`
	DetailEntry map[string]any `json:"detailEntry"`
}

// Client is the HTTP client the action came from.
type Client struct {
	UserAgent           *UserAgent           `json:"userAgent"`
	Zone                string               `json:"zone"`
	Device              string               `json:"device"`
	ID                  *string              `json:"id"`
	IPAddress           string               `json:"ipAddress"`
	GeographicalContext *GeographicalContext `json:"geographicalContext"`
}

// UserAgent is the parsed User-Agent header.
type UserAgent struct {
	RawUserAgent string `json:"rawUserAgent"`
	OS           string `json:"os"`
	Browser      string `json:"browser"`
}

// GeographicalContext is Okta's IP geolocation.
type GeographicalContext struct {
	City        string       `json:"city"`
	State       string       `json:"state"`
	Country     string       `json:"country"`
	PostalCode  *string      `json:"postalCode"`
	Geolocation *Geolocation `json:"geolocation"`
}

// Geolocation is a latitude/longitude pair.
type Geolocation struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Device is the (Okta Verify / FastPass) device object; null for most events.
type Device struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	OSPlatform            string `json:"os_platform"`
	OSVersion             string `json:"os_version"`
	Managed               bool   `json:"managed"`
	Registered            bool   `json:"registered"`
	DeviceIntegrator      any    `json:"device_integrator"`
	DiskEncryptionType    string `json:"disk_encryption_type"`
	ScreenLockType        string `json:"screen_lock_type"`
	Jailbreak             bool   `json:"jailbreak"`
	SecureHardwarePresent bool   `json:"secure_hardware_present"`
}

// AuthenticationContext describes how the actor authenticated.
type AuthenticationContext struct {
	AuthenticationProvider *string `json:"authenticationProvider"`
	CredentialProvider     *string `json:"credentialProvider"`
	CredentialType         *string `json:"credentialType"`
	Issuer                 *Issuer `json:"issuer"`
	Interface              *string `json:"interface"`
	AuthenticationStep     int     `json:"authenticationStep"`
	RootSessionID          string  `json:"rootSessionId,omitempty"`
	ExternalSessionID      string  `json:"externalSessionId"`
}

// Issuer issued the credential.
type Issuer struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Outcome is the result of the action.
type Outcome struct {
	Result string  `json:"result"`
	Reason *string `json:"reason"`
}

// Target is an entity the action was performed on.
type Target struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	AlternateID string         `json:"alternateId"`
	DisplayName string         `json:"displayName"`
	DetailEntry map[string]any `json:"detailEntry"`
}

// Transaction groups events of one request.
type Transaction struct {
	Type   string         `json:"type"`
	ID     string         `json:"id"`
	Detail map[string]any `json:"detail"`
}

// DebugContext holds free-form, event-type specific data.
type DebugContext struct {
	DebugData map[string]any `json:"debugData"`
}

// SecurityContext is Okta's network reputation of the client IP.
type SecurityContext struct {
	AsNumber *int    `json:"asNumber"`
	AsOrg    *string `json:"asOrg"`
	ISP      *string `json:"isp"`
	Domain   *string `json:"domain"`
	IsProxy  *bool   `json:"isProxy"`
}

// EventRequest is the event's request object (named to leave Request for the
// simulator's request log).
type EventRequest struct {
	IPChain []IPAddress `json:"ipChain"`
}

// IPAddress is one hop of request.ipChain.
type IPAddress struct {
	IP                  string               `json:"ip"`
	GeographicalContext *GeographicalContext `json:"geographicalContext"`
	Version             string               `json:"version"`
	Source              *string              `json:"source"`
}

// MarshalJSON renders published exactly as Okta does (UTC, milliseconds;
// encoding/json would otherwise use nanoseconds and the time's own zone) and
// an empty legacyEventType as Okta's null.
func (e LogEvent) MarshalJSON() ([]byte, error) {
	type plain LogEvent
	// The outer fields shadow the embedded ones and come first, keeping
	// uuid and published at the top as Okta's responses have them.
	out := struct {
		UUID            string  `json:"uuid"`
		Published       string  `json:"published"`
		LegacyEventType *string `json:"legacyEventType"`
		plain
	}{UUID: e.UUID, Published: FormatTime(e.Published), plain: plain(e)}
	if e.LegacyEventType != "" {
		out.LegacyEventType = &e.LegacyEventType
	}
	return json.Marshal(out)
}

// JSON is the event as the API serialises it. It panics only if the event
// holds values encoding/json cannot encode (an invalid DetailEntry value),
// which is a bug in the caller.
func (e LogEvent) JSON() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic("oktasim: encoding LogEvent: " + err.Error())
	}
	return b
}

// FormatTime renders t like Okta's published field.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeFormat)
}

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }
func intp(i int) *int       { return &i }
