package okta

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// RateInfo is what the X-Rate-Limit-* headers of a response said, with the
// reset moved onto the local clock using the response's Date, so a skewed
// local clock does not make a reader wait too little or too long.
type RateInfo struct {
	Known     bool   // the headers are present and believable
	Present   bool   // some X-Rate-Limit header was sent
	Problem   string // why the headers are not used, when !Known
	Limit     int
	Remaining int
	Reset     int64     // X-Rate-Limit-Reset as sent: identifies the window
	ResetAt   time.Time // the same instant on the local clock
}

// parseRateHeaders reads X-Rate-Limit-*. Reset is epoch seconds on Okta's
// clock; the wait until then is measured against Okta's Date header and laid
// onto the local clock at the moment the response arrived.
//
// Headers that cannot be believed (a limit of 0 or less, a reset more than
// maxRateWait after Date or before it, as a wrong Date makes it) are not
// used: the answer is unknown, and Problem says why.
func parseRateHeaders(h http.Header, received time.Time) RateInfo {
	rawL, rawR, rawS := h.Get("X-Rate-Limit-Limit"), h.Get("X-Rate-Limit-Remaining"), h.Get("X-Rate-Limit-Reset")
	if rawL == "" && rawR == "" && rawS == "" {
		return RateInfo{Problem: "no X-Rate-Limit headers"}
	}
	bad := func(format string, args ...any) RateInfo {
		return RateInfo{Present: true, Problem: fmt.Sprintf(format, args...)}
	}
	limit, errL := strconv.Atoi(rawL)
	remaining, errR := strconv.Atoi(rawR)
	reset, errS := strconv.ParseInt(rawS, 10, 64)
	switch {
	case errL != nil || errR != nil || errS != nil:
		return bad("X-Rate-Limit headers incomplete or not numbers (limit %q, remaining %q, reset %q)", snippet([]byte(rawL)), snippet([]byte(rawR)), snippet([]byte(rawS)))
	case limit <= 0 || remaining < 0:
		return bad("X-Rate-Limit-Limit %d, X-Rate-Limit-Remaining %d", limit, remaining)
	}
	serverNow, clock := received, "the local clock (no Date header)"
	if d, ok := responseDate(h); ok {
		serverNow, clock = d, "the response's Date"
	}
	// Compared in seconds: epoch seconds far from now overflow a Duration.
	untilReset := reset - serverNow.Unix()
	switch {
	case untilReset > int64(maxRateWait/time.Second):
		return bad("X-Rate-Limit-Reset is %s after %s", humanSeconds(untilReset), clock)
	case untilReset < -int64(resetSlack/time.Second):
		return bad("X-Rate-Limit-Reset is %s before %s", humanSeconds(-untilReset), clock)
	}
	wait := max(time.Unix(reset, 0).Sub(serverNow), 0)
	return RateInfo{Known: true, Present: true, Limit: limit, Remaining: remaining, Reset: reset, ResetAt: received.Add(wait)}
}

// humanSeconds words a possibly huge number of seconds.
func humanSeconds(s int64) string {
	const day = 24 * 3600
	if s >= 2*day {
		return fmt.Sprintf("%d days", s/day)
	}
	return (time.Duration(s) * time.Second).String()
}
