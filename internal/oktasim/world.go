package oktasim

import (
	"hash/fnv"
	"strings"
)

// OrgDomain is the simulated org's email domain.
const OrgDomain = "acme.example"

// place is where a client IP geolocates, with the network Okta's
// securityContext reports for it.
type place struct {
	city, state, country, postal string
	lat, lon                     float64
	ipPrefix                     string // first two octets
	asNumber                     int
	asOrg, isp, domain           string
	proxy                        bool
}

// places are the org's offices and remote workers, plus two hosting
// networks attackers come from. Coordinates are the cities' real ones so
// distance-based rules compute real speeds.
var places = []place{
	{"San Francisco", "California", "United States", "94105", 37.7852, -122.3874, "136.24", 7922, "comcast", "comcast cable communications llc", "comcast.net", false},
	{"New York", "New York", "United States", "10001", 40.7506, -73.9972, "71.190", 7018, "at&t corp.", "at&t services inc", "sbcglobal.net", false},
	{"Chicago", "Illinois", "United States", "60601", 41.8857, -87.6181, "98.213", 701, "verizon", "verizon business", "verizon.net", false},
	{"Austin", "Texas", "United States", "78701", 30.2711, -97.7437, "70.114", 11427, "charter communications inc", "charter communications inc", "rr.com", false},
	{"Seattle", "Washington", "United States", "98101", 47.6101, -122.3344, "67.185", 7922, "comcast", "comcast cable communications llc", "comcast.net", false},
	{"London", "England", "United Kingdom", "EC2A", 51.5225, -0.0838, "81.2", 2856, "british telecommunications plc", "bt", "btcentralplus.com", false},
	{"Berlin", "Land Berlin", "Germany", "10115", 52.5323, 13.3846, "91.64", 3320, "deutsche telekom ag", "deutsche telekom ag", "t-ipconnect.de", false},
	{"Toronto", "Ontario", "Canada", "M5H", 43.6511, -79.3832, "99.230", 577, "bell canada", "bell canada", "bell.ca", false},
	{"Tokyo", "Tokyo", "Japan", "100-0001", 35.6895, 139.6917, "126.72", 17676, "softbank corp.", "softbank corp.", "bbtec.net", false},
	{"Sydney", "New South Wales", "Australia", "2000", -33.8688, 151.2093, "101.160", 1221, "telstra corporation ltd", "telstra internet", "bigpond.net.au", false},
	{"Amsterdam", "North Holland", "Netherlands", "1012", 52.3740, 4.8897, "185.220", 60729, "example hosting b.v.", "example hosting b.v.", "hosting.example", true},
	{"Frankfurt am Main", "Hesse", "Germany", "60313", 50.1155, 8.6842, "45.134", 14061, "example cloud llc", "example cloud llc", "cloud.example", true},
}

const (
	placeSanFrancisco = iota
	placeNewYork
	placeChicago
	placeAustin
	placeSeattle
	placeLondon
	placeBerlin
	placeToronto
	placeTokyo
	placeSydney
	placeAmsterdam
	placeFrankfurt
	officePlaces = placeAmsterdam // places before this index are where employees work
)

// placeOf geolocates ip by its first two octets; unknown addresses land in
// a hosting network, as attacker infrastructure usually does.
func placeOf(ip string) place {
	for _, p := range places {
		if strings.HasPrefix(ip, p.ipPrefix+".") {
			return p
		}
	}
	return places[placeAmsterdam]
}

// userAgent is a browser or client as Okta parses it.
type userAgent struct{ raw, os, browser string }

var userAgents = []userAgent{
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Mac OS X", "CHROME"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Windows 10", "EDGE_CHROMIUM"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", "Mac OS X", "FIREFOX"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Mac OS X", "SAFARI"},
	{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Linux", "CHROME"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "iOS", "MOBILE_SAFARI"},
}

// attackerAgent is what scripted credential stuffing looks like.
var attackerAgent = userAgent{"python-requests/2.32.3", "Unknown", "UNKNOWN"}

// persona is a user of the org.
type persona struct {
	id, login, name string
	home            int // index into places
	agent           int // index into userAgents
}

// staff is the org's everyday user population; ordinary traffic comes from
// them, from their home city and browser.
var staff = func() []persona {
	names := []string{
		"Alice Green", "Bob Martinez", "Carol Nguyen", "David Okafor", "Erin Walsh",
		"Farid Haddad", "Grace Kim", "Hiro Tanaka", "Ines Duarte", "Jack Naglieri",
		"Kara Olsen", "Liam Byrne", "Maya Patel", "Noah Fischer", "Olivia Chen",
		"Paul Dubois", "Quinn Rivera", "Rosa Lindqvist", "Sam Taylor", "Tara Singh",
	}
	out := make([]persona, len(names))
	for i, n := range names {
		out[i] = newPersona(loginOf(n))
		out[i].name = n
		out[i].home = i % officePlaces
		out[i].agent = i % len(userAgents)
	}
	return out
}()

// admins perform administrative changes in ordinary traffic.
var admins = []persona{
	func() persona { p := newPersona("it.admin@" + OrgDomain); p.name = "IT Admin"; return p }(),
	func() persona { p := newPersona("sec.ops@" + OrgDomain); p.name = "Security Operations"; return p }(),
}

func loginOf(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@" + OrgDomain
}

// lookupPersona finds a staff member or admin by login, or derives a
// persona for anyone else, so attack building blocks accept any user and
// still produce the same ids every time.
func lookupPersona(login string) persona {
	for _, group := range [][]persona{staff, admins} {
		for _, p := range group {
			if p.login == login {
				return p
			}
		}
	}
	return newPersona(login)
}

// newPersona derives a stable persona from a login alone.
func newPersona(login string) persona {
	h := fnv.New64a()
	_, _ = h.Write([]byte(login))
	sum := h.Sum64()
	local, _, _ := strings.Cut(login, "@")
	words := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	if len(words) == 0 {
		words = []string{login}
	}
	return persona{
		id:    "00u" + base62(sum, 17),
		login: login,
		name:  strings.Join(words, " "),
		home:  int(sum % officePlaces),
		agent: int(sum>>8) % len(userAgents),
	}
}

const alphanum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62 spreads a hash into n id characters.
func base62(v uint64, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphanum[v%62]
		v = v/62 + uint64(i+1)*0x9e3779b97f4a7c15
	}
	return string(b)
}
