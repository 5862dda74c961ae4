package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// The shipped Kafka configs against a broker as a new user meets it: no
// topics yet. Each test runs the real binary and reads back with kcat.

const deadLetterTopic = "okta.deadletter"

// freshKafka starts a kfake cluster with no topics; auto says whether it
// creates topics that a metadata request asks for (Apache Kafka's default).
func freshKafka(t *testing.T, auto bool, opts ...kfake.Opt) string {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)
	if auto {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close) // after the processes stop (cleanups run last in, first out)
	return strings.Join(cluster.ListenAddrs(), ",")
}

// freshOrg is a simulated org holding ordinary traffic and the seed attacks.
func freshOrg(t *testing.T, seed int64) (url string, uuids []string) {
	t.Helper()
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return srv.URL, seedAttacks(sim, oktasim.NewGenerator(seed), 500)
}

func oktaEnv(orgURL, brokers string, extra ...string) []string {
	return append([]string{"OKTA_ORG_URL=" + orgURL, "OKTA_API_TOKEN=" + token, "OKTA_POLL_INTERVAL=300ms",
		"OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS=" + brokers}, extra...)
}

// kcat reads topic from its start to its end, one line per record in
// format; read_committed is librdkafka's default.
func kcat(t *testing.T, brokers, topic, format string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not installed: .ci/run installs it (Debian package kcat)")
	}
	out, err := exec.Command("kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", format).CombinedOutput()
	return string(out), err
}

// waitKcatEvents waits until kcat reads every uuid in the events topic.
func waitKcatEvents(t *testing.T, brokers string, uuids []string) {
	t.Helper()
	testkit.Until(t, "kcat reading every event from "+eventsTopic, func() (bool, string) {
		out, err := kcat(t, brokers, eventsTopic, "%s\n")
		if err != nil {
			return false, fmt.Sprintf("kcat: %v: %.300s", err, out)
		}
		seen := map[string]bool{}
		for _, m := range uuidRE.FindAllStringSubmatch(out, -1) {
			seen[m[1]] = true
		}
		missing := 0
		for _, u := range uuids {
			if !seen[u] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d events missing", missing, len(uuids))
	})
}

// waitKcatAlerts waits until kcat reads an alert of every seed rule, each
// keyed by its alert_id.
func waitKcatAlerts(t *testing.T, brokers string) {
	t.Helper()
	testkit.Until(t, "kcat reading an alert of every seed rule from "+alertsTopic, func() (bool, string) {
		out, err := kcat(t, brokers, alertsTopic, "%k\t%s\n")
		if err != nil {
			return false, fmt.Sprintf("kcat: %v: %.300s", err, out)
		}
		var missing []string
		for _, id := range seedRuleIDs {
			if !strings.Contains(out, `"id":"`+id+`"`) {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no alert of %v", missing)
	})
	out, _ := kcat(t, brokers, alertsTopic, "%k\t%s\n")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		key, value, _ := strings.Cut(line, "\t")
		if !strings.Contains(value, `"alert_id":"`+key+`"`) {
			t.Errorf("kcat: alert key %q is not its alert_id: %.200s", key, value)
		}
	}
}

func partitionCounts(t *testing.T, brokers string, topics ...string) map[string]int {
	t.Helper()
	adm, ctx, done := adminQuery(t, strings.Split(brokers, ","))
	defer done()
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for name, d := range td {
		out[name] = len(d.Partitions)
	}
	return out
}

// okta-to-kafka.yaml (exactly once) on a fresh auto-creating broker.
func TestFreshKafkaExactlyOnce(t *testing.T) {
	brokers := freshKafka(t, true)
	org, uuids := freshOrg(t, 31)
	startStage(t, "okta-to-kafka.yaml", oktaEnv(org, brokers)...)
	waitKcatEvents(t, brokers, uuids)
	waitKcatAlerts(t, brokers)
	if n := partitionCounts(t, brokers, eventsTopic)[eventsTopic]; n != 12 {
		t.Errorf("%s has %d partitions, want the 12 the config creates it with", eventsTopic, n)
	}
}

// okta-to-kafka-at-least-once.yaml with create_topics off: the broker's
// auto-creation alone makes the topics.
func TestFreshKafkaAtLeastOnceAutoCreated(t *testing.T) {
	brokers := freshKafka(t, true)
	org, uuids := freshOrg(t, 32)
	startStage(t, "okta-to-kafka-at-least-once.yaml", oktaEnv(org, brokers, "KAFKA_CREATE_TOPICS=false")...)
	waitKcatEvents(t, brokers, uuids)
	waitKcatAlerts(t, brokers)
}

// stage1 + stage2 on a fresh broker: stage 2 starts first and waits for
// the events topic stage 1 creates.
func TestFreshKafkaTwoStages(t *testing.T) {
	brokers := freshKafka(t, true)
	org, uuids := freshOrg(t, 33)
	startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, "KAFKA_CONSUMER_GROUP=fresh-detect")
	startStage(t, "stage1-okta-to-kafka.yaml", oktaEnv(org, brokers)...)
	waitKcatEvents(t, brokers, uuids)
	waitKcatAlerts(t, brokers)
}

// many-orgs-to-kafka.yaml on a fresh broker.
func TestFreshKafkaManyOrgs(t *testing.T) {
	brokers := freshKafka(t, true)
	org1, uuids1 := freshOrg(t, 34)
	org2, uuids2 := freshOrg(t, 41)
	startStage(t, "many-orgs-to-kafka.yaml", "OKTA_ORG1_URL="+org1, "OKTA_ORG1_API_TOKEN="+token,
		"OKTA_ORG2_URL="+org2, "OKTA_ORG2_API_TOKEN="+token, "OKTA_POLL_INTERVAL=300ms",
		"OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS="+brokers)
	waitKcatEvents(t, brokers, append(uuids1, uuids2...))
	waitKcatAlerts(t, brokers)
}

// Auto-creation off: create_topics (on in the shipped configs) creates the
// topics with the configured partitions; with it off too, the log names the
// missing topic and the fix instead of waiting silently.
func TestFreshKafkaWithoutAutoCreation(t *testing.T) {
	t.Run("create_topics", func(t *testing.T) {
		brokers := freshKafka(t, false)
		org, uuids := freshOrg(t, 35)
		startStage(t, "okta-to-kafka.yaml", oktaEnv(org, brokers, "KAFKA_TOPIC_PARTITIONS=6")...)
		waitKcatEvents(t, brokers, uuids)
		waitKcatAlerts(t, brokers)
		got := partitionCounts(t, brokers, eventsTopic, alertsTopic)
		if got[eventsTopic] != 6 || got[alertsTopic] != 6 {
			t.Errorf("partitions %v, want 6 each (KAFKA_TOPIC_PARTITIONS)", got)
		}
	})
	t.Run("nothing-creates", func(t *testing.T) {
		brokers := freshKafka(t, false)
		org, _ := freshOrg(t, 36)
		// Pages wait for Kafka's acks until shutdown_timeout: keep it short.
		p := startStage(t, "okta-to-kafka-at-least-once.yaml", oktaEnv(org, brokers, "KAFKA_CREATE_TOPICS=false", "OKTADETECT_SHUTDOWN_TIMEOUT=3s")...)
		testkit.Until(t, "the log naming the missing topic and the fix", func() (bool, string) {
			out := p.String()
			return strings.Contains(out, `topic \"okta.system_log\" does not exist`) && strings.Contains(out, "create_topics"), tail(out, 600)
		})
	})
}

// One event larger than max_message_bytes goes to the dead-letter topic,
// with the reason in a header; the org's later events and attacks arrive.
func TestOversizeEventGoesToDeadLetterTopic(t *testing.T) {
	for _, config := range []string{"okta-to-kafka.yaml", "okta-to-kafka-at-least-once.yaml"} {
		t.Run(config, func(t *testing.T) {
			brokers := freshKafka(t, true)
			sim := oktasim.New(oktasim.Options{Token: token})
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			g := oktasim.NewGenerator(37)
			before := g.Backlog(20, time.Now().Add(-40*time.Minute), time.Second)
			big := before[10]
			big.DisplayMessage = strings.Repeat("an oversized display message ", 40_000) // ~1.2 MB
			before[10] = big
			sim.Persist(before...)
			later := seedAttacks(sim, g, 50) // published after the big one
			startStage(t, config, oktaEnv(srv.URL, brokers)...)

			want := append(uuidsOf(before[:10]), uuidsOf(before[11:])...)
			waitKcatEvents(t, brokers, append(want, later...))
			waitKcatAlerts(t, brokers)
			testkit.Until(t, "the oversized event in "+deadLetterTopic, func() (bool, string) {
				out, err := kcat(t, brokers, deadLetterTopic, "%k\t%h\n")
				return err == nil && strings.Contains(out, big.UUID) && strings.Contains(out, "dead_letter_reason=record of") &&
					strings.Contains(out, "max_message_bytes") && strings.Contains(out, "dead_letter_topic="+eventsTopic), out
			})
			if out, _ := kcat(t, brokers, eventsTopic, "%s\n"); strings.Contains(out, big.UUID) {
				t.Errorf("the oversized event is in %s too", eventsTopic)
			}
		})
	}
}

// Every cause of a connection failure reaches the log, and /ready says the
// pipeline is not ready meanwhile. A SASL password with " #" in it, passed
// the way the shipped configs take it, authenticates.
func TestKafkaConnectionFailuresNameTheirCause(t *testing.T) {
	plain := freshKafka(t, true)
	sasl := freshKafka(t, true, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "okta", "pa ss #word"))
	closed := freeAddr(t)
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"refused":        {[]string{"KAFKA_BROKERS=" + closed}, "connection refused"},
		"wrong-password": {[]string{"KAFKA_BROKERS=" + sasl, "KAFKA_SASL_MECHANISM=SCRAM-SHA-256", "KAFKA_SASL_USERNAME=okta", "KAFKA_SASL_PASSWORD=Wr0ngPassw0rd"}, "during SASL authentication: check sasl mechanism, username and password"},
		"tls-vs-plain":   {[]string{"KAFKA_BROKERS=" + plain, "KAFKA_TLS=true"}, "TLS handshake with"},
	} {
		t.Run(name, func(t *testing.T) {
			org, _ := freshOrg(t, 38)
			httpAddr := freeAddr(t)
			env := append(oktaEnv(org, "unused:1", "OKTADETECT_SHUTDOWN_TIMEOUT=3s"), tc.env...)
			p := startStage(t, "okta-to-kafka-at-least-once.yaml", append(env, "OKTADETECT_HTTP_ADDRESS="+httpAddr)...)
			testkit.Until(t, "the log naming the cause: "+tc.want, func() (bool, string) {
				return strings.Contains(p.String(), tc.want), tail(p.String(), 800)
			})
			// Benthos registers /ready once the stream is built, which can be
			// just after the output logs its first failure (a 404 before):
			// wait for the endpoint; then it must say not ready.
			var code int
			testkit.Until(t, "/ready to be served", func() (bool, string) {
				code = readyStatus(httpAddr)
				return code != 0 && code != http.StatusNotFound, fmt.Sprintf("/ready %d", code)
			})
			if code != http.StatusServiceUnavailable {
				t.Errorf("/ready answers %d while Kafka cannot be reached, want 503", code)
			}
			if strings.Contains(p.String(), "Wr0ngPassw0rd") {
				t.Error("the SASL password appears in the log")
			}
			if n := strings.Count(p.String(), tc.want); n > 3 {
				t.Errorf("the cause is logged %d times; once per change of state is enough", n)
			}
		})
	}
	t.Run("password-with-hash", func(t *testing.T) {
		org, uuids := freshOrg(t, 39)
		startStage(t, "okta-to-kafka-at-least-once.yaml", oktaEnv(org, sasl,
			"KAFKA_SASL_MECHANISM=SCRAM-SHA-256", "KAFKA_SASL_USERNAME=okta", "KAFKA_SASL_PASSWORD=pa ss #word")...)
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(sasl, ",")...), kgo.ConsumeTopics(eventsTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SASL(scram.Auth{User: "okta", Pass: "pa ss #word"}.AsSha256Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		seen := map[string]bool{}
		testkit.Until(t, "every event written with the ' #' password", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if m := uuidRE.FindSubmatch(r.Value); m != nil {
					seen[string(m[1])] = true
				}
			})
			return len(seen) >= len(uuids), fmt.Sprintf("%d of %d events", len(seen), len(uuids))
		})
	})
}

func readyStatus(addr string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// An existing checkpoint topic that deletes by retention is made compacted,
// with a WARN saying why.
func TestNonCompactedCheckpointTopicIsFixed(t *testing.T) {
	brokers := freshKafka(t, true)
	adm, ctx, done := adminQuery(t, strings.Split(brokers, ","))
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kmsg.StringPtr("delete")}, checkpointsTopic); err != nil {
		t.Fatal(err)
	}
	done()
	org, uuids := freshOrg(t, 40)
	p := startStage(t, "okta-to-kafka.yaml", oktaEnv(org, brokers)...)
	waitKcatEvents(t, brokers, uuids)
	if !strings.Contains(p.String(), `had cleanup.policy \"delete\"`) {
		t.Errorf("no WARN about the checkpoint topic's cleanup.policy:\n%s", tail(p.String(), 2000))
	}
	adm, ctx, done = adminQuery(t, strings.Split(brokers, ","))
	defer done()
	rcs, err := adm.DescribeTopicConfigs(ctx, checkpointsTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On(checkpointsTopic, nil)
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && (c.Value == nil || *c.Value != "compact") {
			t.Errorf("cleanup.policy of %s is %v, want compact", checkpointsTopic, c.Value)
		}
	}
}
