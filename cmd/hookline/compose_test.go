package main

// Checks of docker-compose.yml and the Dockerfile against the real flags of
// `hookline serve`: Docker cannot run in the tests, so a misspelt flag, an
// environment variable that names no flag or a value the flag refuses would
// otherwise only show when someone runs `docker compose up`.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const composePath = "../../docker-compose.yml"

// composeStages are the services of docker-compose.yml built from the
// Dockerfile, one for each stage.
var composeStages = []string{"api", "matcher", "sender", "projector"}

// composeSenderReplicas is the number of sender containers of the compose file.
const composeSenderReplicas = 2

func TestComposeFile(t *testing.T) {
	checkCompose(t, composePath)
}

// TestComposeCheckFindsProblems runs checkCompose on broken copies of the
// compose file and the Dockerfile, and expects it to name the problem.
func TestComposeCheckFindsProblems(t *testing.T) {
	type edit struct {
		compose    func(t *testing.T, services *yaml.Node)
		dockerfile func(t *testing.T, text string) string
	}
	cases := []struct {
		name string
		edit
		want []string // substrings of one reported error; none for a valid copy
	}{
		{name: "unchanged copy", want: nil},
		{
			name: "a service without the shared secrets key",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "matcher", "HOOKLINE_SECRETS_KEY", "")
			}},
			want: []string{`service "matcher"`, "HOOKLINE_SECRETS_KEY"},
		},
		{
			name: "unknown flag in command",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "api"), "command", seqNode("serve", "--frobnicate"))
			}},
			want: []string{`service "api"`, "--frobnicate", "not a flag"},
		},
		{
			name: "unknown flag in a string command",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "matcher"), "command", strNode("serve --stages matcher --frobnicate=1"))
			}},
			want: []string{`service "matcher"`, "--frobnicate=1"},
		},
		{
			name: "unknown environment variable",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "sender", "HOOKLINE_FROBNICATE", "1")
			}},
			want: []string{`service "sender"`, "HOOKLINE_FROBNICATE", "names no flag"},
		},
		{
			name: "unknown environment variable in a list",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				envToList(t, services, "projector")
				setEnvNode(t, services, "projector", "HOOKLINE_FROBNICATE", "1")
			}},
			want: []string{`service "projector"`, "HOOKLINE_FROBNICATE"},
		},
		{
			name: "environment as a list",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				envToList(t, services, "projector")
			}},
			want: nil,
		},
		{
			name: "bad environment value",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "projector", "HOOKLINE_PARTITIONS", "six")
			}},
			want: []string{`service "projector"`, `HOOKLINE_PARTITIONS="six"`, "--partitions"},
		},
		{
			name: "bad default of an interpolation",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "sender", "HOOKLINE_DRAIN_TIMEOUT", "${DRAIN:-soon}")
			}},
			want: []string{`service "sender"`, "HOOKLINE_DRAIN_TIMEOUT", "soon"},
		},
		{
			name: "good default of an interpolation",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "sender", "HOOKLINE_MAX_IN_FLIGHT", "${MAX_IN_FLIGHT:-5000}")
			}},
			want: nil,
		},
		{
			name: "bad command value",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "api"), "command", seqNode("serve", "--drain-timeout", "soon"))
			}},
			want: []string{`service "api"`, "drain-timeout"},
		},
		{
			name: "valid command flags",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "sender"), "command",
					seqNode("serve", "--stages=sender", "--allow-private-targets", "--max-in-flight", "5000"))
			}},
			want: nil,
		},
		{
			name: "command not serve",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "sender"), "command", seqNode("receive"))
			}},
			want: []string{`service "sender"`, "does not start with serve"},
		},
		{
			name: "unknown stage",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "matcher", "HOOKLINE_STAGES", "matcher,dispatcher")
			}},
			want: []string{`service "matcher"`, `unknown stage "dispatcher"`},
		},
		{
			name: "stage run by no service",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "projector", "HOOKLINE_STAGES", "matcher")
			}},
			want: []string{"no service runs the stage(s) projector"},
		},
		{
			name: "one sender",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "sender"), "deploy", mapNode("replicas", "1"))
			}},
			want: []string{`service "sender"`, "replicas is 1, want 2"},
		},
		{
			name: "ClickHouse DSN off the compose network",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "api", "HOOKLINE_CLICKHOUSE_DSN", "clickhouse://hookline:hookline@localhost:9000/hookline")
			}},
			want: []string{`service "api"`, `host "localhost" names no compose service`},
		},
		{
			name: "ClickHouse DSN with the wrong password",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "projector", "HOOKLINE_CLICKHOUSE_DSN", "clickhouse://hookline:nope@clickhouse:9000/hookline")
			}},
			want: []string{`service "projector"`, "CLICKHOUSE_PASSWORD"},
		},
		{
			name: "Kafka broker off the compose network",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "sender", "HOOKLINE_KAFKA_BROKERS", "localhost:29092")
			}},
			want: []string{`service "sender"`, `"localhost:29092" names no compose service`},
		},
		{
			name: "Kafka broker on a listener not advertised",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "sender", "HOOKLINE_KAFKA_BROKERS", "kafka:9093")
			}},
			want: []string{`service "sender"`, `"kafka:9093" is not among the listeners`},
		},
		{
			name: "Kafka with ZooKeeper roles",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "kafka", "KAFKA_PROCESS_ROLES", "broker")
			}},
			want: []string{`service "kafka"`, "KAFKA_PROCESS_ROLES"},
		},
		{
			name: "Kafka not official",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "kafka"), "image", strNode("bitnami/kafka:latest"))
			}},
			want: []string{`service "kafka"`, "apache/kafka"},
		},
		{
			name: "ClickHouse without its volume",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				deleteKey(serviceNode(t, services, "clickhouse"), "volumes")
			}},
			want: []string{`service "clickhouse"`, "no named volume at /var/lib/clickhouse"},
		},
		{
			name: "Kafka without healthcheck",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				deleteKey(serviceNode(t, services, "kafka"), "healthcheck")
			}},
			want: []string{`depends_on "kafka" with condition service_healthy, but "kafka" has no healthcheck`},
		},
		{
			name: "depends_on without conditions",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "matcher"), "depends_on", seqNode("kafka", "clickhouse"))
			}},
			want: []string{`service "matcher"`, "does not depend on it with condition service_healthy"},
		},
		{
			name: "API without healthcheck",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				deleteKey(serviceNode(t, services, "api"), "healthcheck")
			}},
			want: []string{`service "api"`, "no healthcheck"},
		},
		{
			name: "API healthcheck needing a shell",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "api"), "healthcheck",
					mapNode("test", "wget -q -O- http://127.0.0.1:8080/readyz || exit 1"))
			}},
			want: []string{`service "api"`, "needs a shell"},
		},
		{
			name: "API healthcheck on another port",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "api", "HOOKLINE_HTTP_ADDR", "0.0.0.0:9090")
			}},
			want: []string{`service "api"`, "listens on port 9090"},
		},
		{
			name: "sender without healthcheck",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				deleteKey(serviceNode(t, services, "sender"), "healthcheck")
			}},
			want: []string{`service "sender"`, "no healthcheck"},
		},
		{
			name: "API published without tokens",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setEnvNode(t, services, "api", "HOOKLINE_API_TOKENS", "")
			}},
			want: []string{`service "api"`, "HOOKLINE_API_TOKENS is empty"},
		},
		{
			name: "SIGKILL before the drain ends",
			edit: edit{compose: func(t *testing.T, services *yaml.Node) {
				setKey(serviceNode(t, services, "sender"), "stop_grace_period", strNode("10s"))
			}},
			want: []string{`service "sender"`, "stop_grace_period 10s"},
		},
		{
			name: "healthcheck probe not in the image",
			edit: edit{dockerfile: func(t *testing.T, text string) string {
				return replaceOnce(t, text, "COPY --from=build /healthcheck /healthcheck\n", "")
			}},
			want: []string{`service "api"`, "runs /healthcheck, which the Dockerfile does not put in the image"},
		},
		{
			name: "cgo",
			edit: edit{dockerfile: func(t *testing.T, text string) string {
				return replaceOnce(t, text, "ENV CGO_ENABLED=0\n", "")
			}},
			want: []string{"Dockerfile", "without CGO_ENABLED=0"},
		},
		{
			name: "root",
			edit: edit{dockerfile: func(t *testing.T, text string) string {
				text = replaceOnce(t, text, "static-debian12:nonroot", "static-debian12")
				return replaceOnce(t, text, "USER 65532:65532\n", "")
			}},
			want: []string{"Dockerfile", "runs as root"},
		},
		{
			name: "unknown variable in the image",
			edit: edit{dockerfile: func(t *testing.T, text string) string {
				return replaceOnce(t, text, "ENV HOOKLINE_DATA_DIR=", "ENV HOOKLINE_FROBNICATE=1 HOOKLINE_DATA_DIR=")
			}},
			want: []string{"Dockerfile: ENV HOOKLINE_FROBNICATE names no flag"},
		},
	}
	composeText, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	dockerfileText, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerignoreText, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal(composeText, &doc); err != nil {
				t.Fatal(err)
			}
			if tc.compose != nil {
				tc.compose(t, mapValue(doc.Content[0], "services"))
			}
			out, err := yaml.Marshal(&doc)
			if err != nil {
				t.Fatal(err)
			}
			df := string(dockerfileText)
			if tc.dockerfile != nil {
				df = tc.dockerfile(t, df)
			}
			dir := t.TempDir()
			for name, data := range map[string][]byte{
				"docker-compose.yml": out, "Dockerfile": []byte(df), ".dockerignore": dockerignoreText,
			} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			fake := &recordingTB{TB: t}
			checkCompose(fake, filepath.Join(dir, "docker-compose.yml"))
			if tc.want == nil {
				for _, e := range fake.errors {
					t.Errorf("unexpected problem: %s", e)
				}
				return
			}
			for _, e := range fake.errors {
				if containsAll(e, tc.want) {
					t.Logf("reported: %s", e)
					return
				}
			}
			t.Errorf("no problem mentions all of %q; got:\n%s", tc.want, strings.Join(fake.errors, "\n"))
		})
	}
}

func TestComposeInterpolate(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		known    bool
	}{
		{"plain", "plain", true},
		{"a$$b", "a$b", true},
		{"${X:-def}", "def", true},
		{"${X-def}", "def", true},
		{"${X:-dev-token:default}", "dev-token:default", true},
		{"x${X:-${Y:-inner}}y", "xinnery", true},
		{"${X:+alt}", "", true},
		{"${X}", "", false},
		{"$X", "", false},
		{"${X:?required}", "", false},
	} {
		got, known, err := interpolate(tc.in)
		if err != nil || got != tc.want || known != tc.known {
			t.Errorf("interpolate(%q) = %q, %v, %v; want %q, %v", tc.in, got, known, err, tc.want, tc.known)
		}
	}
	for _, bad := range []string{"${X", "$", "${:-x}", "a$-b"} {
		if _, _, err := interpolate(bad); err == nil {
			t.Errorf("interpolate(%q): no error", bad)
		}
	}
}

// recordingTB records what checkCompose reports instead of failing.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func replaceOnce(t *testing.T, text, old, new string) string {
	t.Helper()
	if strings.Count(text, old) != 1 {
		t.Fatalf("the Dockerfile has %d times %q, want 1: update the test", strings.Count(text, old), old)
	}
	return strings.Replace(text, old, new, 1)
}

// YAML nodes, to edit the compose file and keep its anchors and merges.

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setKey(m *yaml.Node, key string, value *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = value
			return
		}
	}
	m.Content = append(m.Content, strNode(key), value)
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func seqNode(items ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, it := range items {
		n.Content = append(n.Content, strNode(it))
	}
	return n
}

// mapNode makes a mapping of key, value pairs; values that are integers stay
// integers.
func mapNode(kv ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		v := strNode(kv[i+1])
		if _, err := strconv.Atoi(kv[i+1]); err == nil {
			v.Tag = "!!int"
		}
		n.Content = append(n.Content, strNode(kv[i]), v)
	}
	return n
}

func serviceNode(t *testing.T, services *yaml.Node, name string) *yaml.Node {
	t.Helper()
	s := mapValue(services, name)
	if s == nil || s.Kind != yaml.MappingNode {
		t.Fatalf("no service %q in the compose file: update the test", name)
	}
	return s
}

// setEnvNode sets a variable of a service's environment, a map or a list.
func setEnvNode(t *testing.T, services *yaml.Node, service, name, value string) {
	t.Helper()
	s := serviceNode(t, services, service)
	env := mapValue(s, "environment")
	switch {
	case env == nil:
		setKey(s, "environment", mapNode(name, value))
	case env.Kind == yaml.MappingNode:
		setKey(env, name, strNode(value))
	case env.Kind == yaml.SequenceNode:
		env.Content = append(env.Content, strNode(name+"="+value))
	default:
		t.Fatalf("service %q: environment of kind %v", service, env.Kind)
	}
}

// envToList rewrites a service's environment, merges included, as a list of
// K=V.
func envToList(t *testing.T, services *yaml.Node, service string) {
	t.Helper()
	s := serviceNode(t, services, service)
	var decoded struct {
		Environment any `yaml:"environment"`
	}
	if err := s.Decode(&decoded); err != nil {
		t.Fatal(err)
	}
	m, ok := decoded.Environment.(map[string]any)
	if !ok {
		t.Fatalf("service %q: environment is not a map", service)
	}
	var items []string
	for _, k := range sortedKeys(m) {
		items = append(items, fmt.Sprintf("%s=%v", k, m[k]))
	}
	setKey(s, "environment", seqNode(items...))
}

// checkCompose reports, through t.Errorf, each problem of the compose file at
// path and of the Dockerfiles its services are built from.
func checkCompose(t testing.TB, path string) {
	t.Helper()
	for _, err := range composeProblems(path) {
		t.Errorf("%s: %v", path, err)
	}
}

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image           string              `yaml:"image"`
	Build           any                 `yaml:"build"`
	Command         any                 `yaml:"command"`
	Entrypoint      any                 `yaml:"entrypoint"`
	Environment     any                 `yaml:"environment"`
	DependsOn       any                 `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck `yaml:"healthcheck"`
	Ports           []any               `yaml:"ports"`
	Volumes         []any               `yaml:"volumes"`
	ContainerName   string              `yaml:"container_name"`
	StopGracePeriod string              `yaml:"stop_grace_period"`
	Deploy          struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

type composeHealthcheck struct {
	Test    any  `yaml:"test"`
	Disable bool `yaml:"disable"`
}

type problems []error

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// composeProblems checks the compose file at composeFilePath and the
// Dockerfiles of its services; it returns every problem found.
func composeProblems(composeFilePath string) []error {
	var p problems
	data, err := os.ReadFile(composeFilePath)
	if err != nil {
		return []error{err}
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		return []error{fmt.Errorf("parsing: %w", err)}
	}
	if len(cf.Services) == 0 {
		return []error{errors.New("no services")}
	}
	dir := filepath.Dir(composeFilePath)

	// The services built from a Dockerfile, and those running their image.
	built := map[string]*dockerfile{}
	dockerfiles := map[string]*dockerfile{}
	builtImages := map[string]*dockerfile{}
	for _, name := range sortedKeys(cf.Services) {
		s := cf.Services[name]
		if s.Build == nil {
			continue
		}
		context, file, err := buildPaths(s.Build)
		if err != nil {
			p.addf("service %q: build: %v", name, err)
			continue
		}
		dfPath := filepath.Join(dir, context, file)
		df, ok := dockerfiles[dfPath]
		if !ok {
			df, err = parseDockerfile(dfPath)
			if err != nil {
				p.addf("service %q: %v", name, err)
				continue
			}
			dockerfiles[dfPath] = df
			for _, err := range dockerfileProblems(df) {
				p.addf("%s: %v", dfPath, err)
			}
			for _, err := range dockerignoreProblems(filepath.Join(dir, context)) {
				p.addf("service %q: %v", name, err)
			}
		}
		built[name] = df
		if s.Image != "" {
			builtImages[s.Image] = df
		}
	}
	for _, name := range sortedKeys(cf.Services) {
		if s := cf.Services[name]; s.Build == nil && builtImages[s.Image] != nil {
			built[name] = builtImages[s.Image]
		}
	}
	for _, name := range composeStages {
		if cf.Services[name] == nil {
			p.addf("no service %q: each stage (%s) runs as a service of its own", name, strings.Join(composeStages, ", "))
		} else if built[name] == nil {
			p.addf("service %q: not built from the Dockerfile (no build:)", name)
		}
	}

	covered := map[string]bool{}
	refs := &composeRefs{kafka: map[string]bool{}, clickhouse: map[string]bool{}}
	for _, name := range sortedKeys(built) {
		for _, stage := range checkHooklineService(&p, &cf, refs, name, built[name]) {
			covered[stage] = true
		}
	}
	for _, name := range sortedKeys(refs.kafka) {
		checkKafkaService(&p, &cf, name)
	}
	for _, name := range sortedKeys(refs.clickhouse) {
		checkClickHouseService(&p, &cf, name)
	}
	var missing []string
	for _, stage := range allStages {
		if !covered[stage] {
			missing = append(missing, stage)
		}
	}
	if len(missing) > 0 {
		p.addf("no service runs the stage(s) %s (set --stages or HOOKLINE_STAGES of a hookline service)", strings.Join(missing, ", "))
	}

	if s := cf.Services["sender"]; s != nil {
		if s.Deploy.Replicas == nil || *s.Deploy.Replicas != composeSenderReplicas {
			got := "unset (1)"
			if s.Deploy.Replicas != nil {
				got = strconv.Itoa(*s.Deploy.Replicas)
			}
			p.addf("service %q: deploy.replicas is %s, want %d", "sender", got, composeSenderReplicas)
		}
	}

	// Every service is either checked by Docker (a healthcheck) or waits for
	// healthy dependencies; depends_on names real services with healthchecks.
	for _, name := range sortedKeys(cf.Services) {
		s := cf.Services[name]
		deps, err := dependsOn(s.DependsOn)
		if err != nil {
			p.addf("service %q: depends_on: %v", name, err)
		}
		for _, dep := range sortedKeys(deps) {
			target := cf.Services[dep]
			switch {
			case target == nil:
				p.addf("service %q: depends_on names no service %q", name, dep)
			case deps[dep] == "service_healthy" && !hasHealthcheck(target):
				p.addf("service %q: depends_on %q with condition service_healthy, but %q has no healthcheck", name, dep, dep)
			}
		}
		waits := false
		for _, cond := range deps {
			waits = waits || cond == "service_healthy" || cond == "service_completed_successfully"
		}
		if !hasHealthcheck(s) && !waits {
			p.addf("service %q: neither a healthcheck nor depends_on with condition service_healthy", name)
		}
		if built[name] == nil && !hasHealthcheck(s) {
			p.addf("service %q: no healthcheck, so services cannot wait for it to be ready", name)
		}
		if s.Deploy.Replicas != nil && *s.Deploy.Replicas > 1 {
			if s.ContainerName != "" {
				p.addf("service %q: container_name %q with %d replicas: container names must be unique", name, s.ContainerName, *s.Deploy.Replicas)
			}
			for _, port := range s.Ports {
				if ps, ok := port.(string); ok && strings.Contains(ps, ":") {
					p.addf("service %q: publishes host port %q with %d replicas: only one container can bind it", name, ps, *s.Deploy.Replicas)
				}
			}
		}
	}
	return p
}

// composeRefs are the services the hookline services use as Kafka brokers
// and as ClickHouse.
type composeRefs struct {
	kafka, clickhouse map[string]bool
}

// checkHooklineService checks a service running the image of df and returns
// the stages it runs.
func checkHooklineService(p *problems, cf *composeFile, refs *composeRefs, name string, df *dockerfile) []string {
	s := cf.Services[name]
	final := df.final()
	if s.Entrypoint != nil {
		p.addf("service %q: sets entrypoint; the image's ENTRYPOINT %q must stay the hookline binary", name, final.entrypoint)
	}

	// The command: the service's own, or the image's CMD.
	var args []string
	if s.Command == nil {
		args = final.cmd
	} else {
		raw, err := commandArgs(s.Command)
		if err != nil {
			p.addf("service %q: command: %v", name, err)
			return nil
		}
		for _, a := range raw {
			v, known, err := interpolate(a)
			switch {
			case err != nil:
				p.addf("service %q: command argument %q: %v", name, a, err)
			case !known:
				p.addf("service %q: command argument %q depends on the environment of docker compose; give it a default (${VAR:-default})", name, a)
			}
			args = append(args, v)
		}
	}
	if len(args) == 0 || args[0] != "serve" {
		p.addf("service %q: command %q does not start with serve (the image's ENTRYPOINT is %q)", name, args, final.entrypoint)
		return nil
	}

	// The real flags of hookline serve, set as the binary would: the image's
	// environment, the service's, then the command line.
	fs := newServeFlagSet()
	env, err := composeEnv(s.Environment)
	if err != nil {
		p.addf("service %q: environment: %v", name, err)
	}
	// The flags whose value comes from the environment of docker compose.
	unknownValue := map[string]bool{}
	setEnvFlags(fs, final.env, unknownValue) // its problems are the Dockerfile's
	for _, err := range setEnvFlags(fs, env, unknownValue) {
		p.addf("service %q: environment %v", name, err)
	}

	if bad := unknownFlags(fs, args[1:]); len(bad) > 0 {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		for _, a := range bad {
			p.addf("service %q: command flag %s is not a flag of hookline serve (want one of %s)", name, a, strings.Join(names, ", "))
		}
	} else if err := fs.Parse(args[1:]); err != nil {
		p.addf("service %q: command %q: %v", name, args, err)
	} else if fs.NArg() > 0 {
		p.addf("service %q: command %q: unexpected argument %q", name, args, fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { delete(unknownValue, f.Name) })
	value := func(flagName string) (string, bool) {
		f := fs.Lookup(flagName)
		if f == nil {
			p.addf("hookline serve has no --%s flag any more: update compose_test.go", flagName)
			return "", false
		}
		return f.Value.String(), !unknownValue[flagName]
	}

	// Stages.
	var stages []string
	if v, known := value("stages"); known {
		for _, stage := range strings.Split(v, ",") {
			stage = strings.TrimSpace(stage)
			switch {
			case stage == "all":
				stages = append(stages, allStages...)
			case contains(allStages, stage):
				stages = append(stages, stage)
			default:
				p.addf("service %q: --stages/HOOKLINE_STAGES %q: unknown stage %q (want all or %s)", name, v, stage, strings.Join(allStages, ","))
			}
		}
	}

	// Every process serves HTTP (/healthz, /readyz, /metrics; the api stage
	// its routes too): beyond loopback only with tokens, and probed by the
	// healthcheck.
	{
		addr, addrKnown := value("http-addr")
		tokens, tokensKnown := value("api-tokens")
		_, port, err := net.SplitHostPort(addr)
		if addrKnown && err != nil {
			p.addf("service %q: --http-addr %q: %v", name, addr, err)
		}
		if addrKnown && tokensKnown && !loopbackOnly(addr) {
			if tok, err := parseTokens(tokens); err != nil {
				p.addf("service %q: %v", name, err)
			} else if len(tok) == 0 {
				p.addf("service %q: --http-addr %s is not loopback but --api-tokens/HOOKLINE_API_TOKENS is empty: hookline serve refuses to start", name, addr)
			}
		}
		checkHealthcheck(p, name, s, df, port)
	}

	if addr, known := value("debug-addr"); known && addr != "" && !loopbackOnly(addr) {
		p.addf("service %q: --debug-addr %s is not loopback: hookline serve refuses to start", name, addr)
	}

	// Kafka: brokers that are compose services this one waits for.
	deps, _ := dependsOn(s.DependsOn)
	if brokers, known := value("kafka-brokers"); known {
		if brokers == "" {
			p.addf("service %q: no --kafka-brokers/HOOKLINE_KAFKA_BROKERS: it would start an embedded broker of its own, unseen by the other stages", name)
		}
		if key, known := value("secrets-key"); known && strings.TrimSpace(key) == "" && brokers != "" {
			p.addf("service %q: no --secrets-key/HOOKLINE_SECRETS_KEY: hookline serve refuses to start on --kafka-brokers without the key every service shares", name)
		}
		for _, b := range strings.Split(brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				checkKafkaBroker(p, cf, refs, name, b, deps)
			}
		}
	}
	// ClickHouse: for the stages that use the attempts store.
	if contains(stages, "api") || contains(stages, "projector") {
		if dsn, known := value("clickhouse-dsn"); known {
			if dsn == "" {
				p.addf("service %q: no --clickhouse-dsn/HOOKLINE_CLICKHOUSE_DSN: it would use an embedded store of its own, unseen by the other stages", name)
			} else {
				checkClickHouseDSN(p, cf, refs, name, dsn, deps)
			}
		}
	}

	// Docker's SIGKILL must not cut the drain of in-flight work short.
	if f := fs.Lookup("drain-timeout"); f != nil {
		if getter, ok := f.Value.(flag.Getter); ok {
			if drain, ok := getter.Get().(time.Duration); ok {
				grace, err := 10*time.Second, error(nil) // Docker's default
				if s.StopGracePeriod != "" {
					if grace, err = time.ParseDuration(s.StopGracePeriod); err != nil {
						p.addf("service %q: stop_grace_period %q: %v", name, s.StopGracePeriod, err)
					}
				}
				if err == nil && grace <= drain {
					p.addf("service %q: stop_grace_period %s is not longer than the drain timeout %s: Docker would kill in-flight work", name, grace, drain)
				}
			}
		}
	}
	return stages
}

// newServeFlagSet returns the flags of hookline serve.
func newServeFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(fs)
	return fs
}

// setEnvFlags sets the flags of fs named by the HOOKLINE_* variables of env, as
// hookline does, and returns the problems: variables naming no flag, values
// the flag refuses. The flags whose value is not known (it comes from the
// environment of docker compose) are added to unknownValue.
func setEnvFlags(fs *flag.FlagSet, env []envVar, unknownValue map[string]bool) []error {
	var p problems
	byEnv := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { byEnv[EnvName(f.Name)] = f })
	for _, v := range env {
		if !strings.HasPrefix(v.name, "HOOKLINE_") {
			continue
		}
		f := byEnv[v.name]
		switch {
		case f == nil:
			p.addf("%s names no flag of hookline serve (want one of %s)", v.name, strings.Join(sortedKeys(byEnv), ", "))
		case v.err != nil:
			p.addf("%s: %v", v.name, v.err)
		case !v.known:
			unknownValue[f.Name] = true
		default:
			delete(unknownValue, f.Name)
			if err := f.Value.Set(v.value); err != nil {
				p.addf("%s=%q is refused by --%s: %v", v.name, v.value, f.Name, err)
			}
		}
	}
	return p
}

// checkHealthcheck checks the healthcheck of a hookline service serving
// HTTP on port (empty if unknown).
func checkHealthcheck(p *problems, name string, s *composeService, df *dockerfile, port string) {
	if !hasHealthcheck(s) {
		p.addf("service %q: serves /readyz but has no healthcheck (probe it)", name)
		return
	}
	test, err := healthcheckTest(s.Healthcheck.Test)
	if err != nil {
		p.addf("service %q: healthcheck: %v", name, err)
		return
	}
	final := df.final()
	if test[0] == "CMD-SHELL" && final.noShell {
		p.addf("service %q: healthcheck %q needs a shell, but the image (%s) has none: use the CMD form", name, test, final.rootBase)
		return
	}
	if test[0] != "CMD" || len(test) < 2 {
		return
	}
	if exe := test[1]; final.noShell && !final.hasFile(exe) {
		p.addf("service %q: healthcheck runs %s, which the Dockerfile does not put in the image (it has %s)", name, exe, strings.Join(final.files, ", "))
	}
	for _, a := range test[2:] {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			continue
		}
		if port != "" && u.Port() != port {
			p.addf("service %q: healthcheck probes %s, but the process listens on port %s", name, a, port)
		}
	}
}

func checkKafkaBroker(p *problems, cf *composeFile, refs *composeRefs, name, broker string, deps map[string]string) {
	host, port, err := net.SplitHostPort(broker)
	if err != nil {
		p.addf("service %q: kafka broker %q: %v", name, broker, err)
		return
	}
	k := cf.Services[host]
	if k == nil {
		p.addf("service %q: kafka broker %q names no compose service (want one of %s)", name, broker, strings.Join(sortedKeys(cf.Services), ", "))
		return
	}
	refs.kafka[host] = true
	if deps[host] != "service_healthy" {
		p.addf("service %q: uses the kafka service %q but does not depend on it with condition service_healthy", name, host)
	}
	env, _ := composeEnv(k.Environment)
	if adv, ok := lookupEnv(env, "KAFKA_ADVERTISED_LISTENERS"); ok && !strings.Contains(adv, "://"+host+":"+port) {
		p.addf("service %q: kafka broker %q is not among the listeners %q advertises (%s)", name, broker, host, adv)
	}
}

func checkClickHouseDSN(p *problems, cf *composeFile, refs *composeRefs, name, dsn string, deps map[string]string) {
	u, err := url.Parse(dsn)
	if err != nil {
		p.addf("service %q: --clickhouse-dsn: %v", name, err)
		return
	}
	if u.Scheme != "clickhouse" {
		p.addf("service %q: --clickhouse-dsn scheme %q, want clickhouse (the native protocol)", name, u.Scheme)
	}
	host := u.Hostname()
	ch := cf.Services[host]
	if ch == nil {
		p.addf("service %q: --clickhouse-dsn host %q names no compose service (want one of %s)", name, host, strings.Join(sortedKeys(cf.Services), ", "))
		return
	}
	refs.clickhouse[host] = true
	if port := u.Port(); port != "" && port != "9000" {
		p.addf("service %q: --clickhouse-dsn port %s, want 9000 (the native protocol port of %q)", name, port, host)
	}
	if deps[host] != "service_healthy" {
		p.addf("service %q: uses the clickhouse service %q but does not depend on it with condition service_healthy", name, host)
	}
	env, _ := composeEnv(ch.Environment)
	want := func(key, def, got, what string) {
		v, ok := lookupEnv(env, key)
		if !ok {
			v = def
		}
		if v != got {
			p.addf("service %q: --clickhouse-dsn %s %q, but service %q has %s %q", name, what, got, host, key, v)
		}
	}
	password, _ := u.User.Password()
	want("CLICKHOUSE_USER", "default", u.User.Username(), "user")
	if _, ok := lookupEnv(env, "CLICKHOUSE_PASSWORD"); ok {
		want("CLICKHOUSE_PASSWORD", "", password, "password")
	}
	want("CLICKHOUSE_DB", "default", strings.TrimPrefix(u.Path, "/"), "database")
}

// checkClickHouseService and checkKafkaService check the services Hookline
// uses: official images with pinned tags, their data in named volumes.
func checkClickHouseService(p *problems, cf *composeFile, name string) {
	s := cf.Services[name]
	if !strings.HasPrefix(s.Image, "clickhouse/clickhouse-server:") || strings.HasSuffix(s.Image, ":latest") {
		p.addf("service %q: image %q, want the official clickhouse/clickhouse-server with a pinned tag", name, s.Image)
	}
	checkNamedVolume(p, cf, name, "/var/lib/clickhouse")
}

func checkKafkaService(p *problems, cf *composeFile, name string) {
	s := cf.Services[name]
	if !(strings.HasPrefix(s.Image, "apache/kafka:") || strings.HasPrefix(s.Image, "apache/kafka-native:")) || strings.HasSuffix(s.Image, ":latest") {
		p.addf("service %q: image %q, want the official apache/kafka with a pinned tag", name, s.Image)
	}
	env, _ := composeEnv(s.Environment)
	roles, _ := lookupEnv(env, "KAFKA_PROCESS_ROLES")
	if !strings.Contains(roles, "broker") || !strings.Contains(roles, "controller") {
		p.addf("service %q: KAFKA_PROCESS_ROLES %q, want broker,controller (one KRaft node)", name, roles)
	}
	if _, ok := lookupEnv(env, "KAFKA_CONTROLLER_QUORUM_VOTERS"); !ok {
		p.addf("service %q: no KAFKA_CONTROLLER_QUORUM_VOTERS: KRaft needs its controller quorum", name)
	}
	if _, ok := lookupEnv(env, "KAFKA_ZOOKEEPER_CONNECT"); ok {
		p.addf("service %q: KAFKA_ZOOKEEPER_CONNECT: Kafka 4 runs on KRaft only", name)
	}
	// Consumer groups commit to __consumer_offsets, which a single node can
	// only create with one replica (the default is 3).
	if rf, _ := lookupEnv(env, "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"); rf != "1" {
		p.addf("service %q: KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR %q, want 1 on a single node", name, rf)
	}
	dataDir := "/var/lib/kafka/data"
	if dirs, ok := lookupEnv(env, "KAFKA_LOG_DIRS"); ok {
		dataDir = strings.Split(dirs, ",")[0]
	}
	checkNamedVolume(p, cf, name, dataDir)
}

func checkNamedVolume(p *problems, cf *composeFile, name, target string) {
	for _, v := range cf.Services[name].Volumes {
		var source, dest string
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) >= 2 {
				source, dest = parts[0], parts[1]
			}
		case map[string]any:
			source, _ = v["source"].(string)
			dest, _ = v["target"].(string)
		}
		if dest != target {
			continue
		}
		if source == "" || strings.ContainsAny(source[:1], "./~$") {
			p.addf("service %q: %s is a bind mount or anonymous volume %q, want a named volume", name, target, source)
		} else if _, ok := cf.Volumes[source]; !ok {
			p.addf("service %q: volume %q is not declared under the top-level volumes", name, source)
		}
		return
	}
	p.addf("service %q: no named volume at %s: its data would not survive the container", name, target)
}

func hasHealthcheck(s *composeService) bool {
	if s.Healthcheck == nil || s.Healthcheck.Disable {
		return false
	}
	test, err := healthcheckTest(s.Healthcheck.Test)
	return err == nil && test[0] != "NONE"
}

// healthcheckTest returns the test of a healthcheck in its list form.
func healthcheckTest(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return nil, errors.New("empty test")
		}
		return []string{"CMD-SHELL", v}, nil
	case []any:
		var test []string
		for _, a := range v {
			test = append(test, fmt.Sprint(a))
		}
		if len(test) == 0 || (test[0] != "NONE" && len(test) < 2) {
			return nil, fmt.Errorf("test %q has no command", test)
		}
		switch test[0] {
		case "CMD", "CMD-SHELL", "NONE":
			return test, nil
		}
		return nil, fmt.Errorf("test %q: want CMD, CMD-SHELL or NONE first", test)
	}
	return nil, fmt.Errorf("test of type %T", v)
}

// dependsOn returns the services of a depends_on and their conditions.
func dependsOn(v any) (map[string]string, error) {
	deps := map[string]string{}
	switch v := v.(type) {
	case nil:
	case []any:
		for _, d := range v {
			deps[fmt.Sprint(d)] = "service_started"
		}
	case map[string]any:
		for name, d := range v {
			cond := "service_started"
			if m, ok := d.(map[string]any); ok {
				if c, ok := m["condition"].(string); ok {
					cond = c
				}
			}
			deps[name] = cond
		}
	default:
		return nil, fmt.Errorf("of type %T", v)
	}
	return deps, nil
}

// buildPaths returns the context and Dockerfile of a service's build.
func buildPaths(v any) (context, file string, err error) {
	context, file = ".", "Dockerfile"
	switch v := v.(type) {
	case string:
		context = v
	case map[string]any:
		if c, ok := v["context"].(string); ok {
			context = c
		}
		if f, ok := v["dockerfile"].(string); ok {
			file = f
		}
		if _, ok := v["dockerfile_inline"]; ok {
			return "", "", errors.New("dockerfile_inline is not checked; use a Dockerfile")
		}
	default:
		return "", "", fmt.Errorf("of type %T", v)
	}
	if strings.Contains(context, "://") {
		return "", "", fmt.Errorf("remote context %q is not checked", context)
	}
	return context, file, nil
}

func commandArgs(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return shellSplit(v)
	case []any:
		var args []string
		for _, a := range v {
			if a == nil {
				return nil, errors.New("null argument")
			}
			args = append(args, fmt.Sprint(a))
		}
		return args, nil
	}
	return nil, fmt.Errorf("of type %T", v)
}

// envVar is a variable of a service's environment; known is false when its
// value comes from the environment of docker compose.
type envVar struct {
	name, value string
	known       bool
	err         error
}

// composeEnv reads an environment as a map or a list of K=V, with the
// compose interpolations replaced by their defaults.
func composeEnv(v any) ([]envVar, error) {
	var vars []envVar
	add := func(name string, value *string) {
		e := envVar{name: name}
		if value != nil {
			e.value, e.known, e.err = interpolate(*value)
		}
		vars = append(vars, e)
	}
	switch v := v.(type) {
	case nil:
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if v[k] == nil {
				add(k, nil)
				continue
			}
			s := fmt.Sprint(v[k])
			add(k, &s)
		}
	case []any:
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return vars, fmt.Errorf("item %v is not a string K=V", item)
			}
			if k, val, ok := strings.Cut(s, "="); ok {
				add(k, &val)
			} else {
				add(s, nil)
			}
		}
	default:
		return nil, fmt.Errorf("of type %T, want a map or a list", v)
	}
	return vars, nil
}

func lookupEnv(env []envVar, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if env[i].name == name && env[i].known && env[i].err == nil {
			return env[i].value, true
		}
	}
	return "", false
}

// interpolate replaces compose's interpolations as if no variable were set:
// ${VAR:-default} and ${VAR-default} by default, $$ by $. known is false
// when the value depends on a variable without default.
func interpolate(s string) (value string, known bool, err error) {
	var b strings.Builder
	known = true
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", false, fmt.Errorf("%q: lone $ at the end (write $$)", s)
		}
		switch c := s[i+1]; {
		case c == '$':
			b.WriteByte('$')
			i++
		case c == '{':
			depth, end := 0, -1
			for j := i + 1; j < len(s) && end < 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					if depth--; depth == 0 {
						end = j
					}
				}
			}
			if end < 0 {
				return "", false, fmt.Errorf("%q: unterminated ${", s)
			}
			expr := s[i+2 : end]
			n := 0
			for n < len(expr) && (expr[n] == '_' || isAlnum(expr[n])) {
				n++
			}
			if n == 0 {
				return "", false, fmt.Errorf("%q: ${%s} names no variable", s, expr)
			}
			op, rest := expr[n:], ""
			for _, o := range []string{":-", ":?", ":+", "-", "?", "+"} {
				if strings.HasPrefix(op, o) {
					op, rest = o, op[len(o):]
					break
				}
			}
			switch op {
			case "":
				known = false
			case ":-", "-":
				v, k, err := interpolate(rest)
				if err != nil {
					return "", false, err
				}
				b.WriteString(v)
				known = known && k
			case ":?", "?":
				known = false
			case ":+", "+":
			default:
				return "", false, fmt.Errorf("%q: bad interpolation ${%s}", s, expr)
			}
			i = end
		case c == '_' || isAlnum(c) && !('0' <= c && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] == '_' || isAlnum(s[j])) {
				j++
			}
			known = false
			i = j - 1
		default:
			return "", false, fmt.Errorf("%q: $%c is not an interpolation (write $$)", s, c)
		}
	}
	return b.String(), known, nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// shellSplit splits a command string as compose does (POSIX shell words).
func shellSplit(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%q: unterminated '", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q: unterminated \"", s)
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// unknownFlags returns the arguments of a command line naming no flag of fs.
func unknownFlags(fs *flag.FlagSet, args []string) []string {
	var unknown []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			unknown = append(unknown, a)
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); (ok && b.IsBoolFlag()) || hasValue {
			continue
		}
		i++ // the flag's value
	}
	return unknown
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// A Dockerfile, read as far as these checks need.
type dockerfile struct {
	stages []*dockerStage
}

type dockerStage struct {
	base, name string
	parent     *dockerStage // the stage base names, if any
	instrs     []dockerInstr
}

type dockerInstr struct {
	cmd, args string
	line      int
}

// finalImage is what the last stage of a Dockerfile makes of the image.
type finalImage struct {
	rootBase   string   // the image the stage is built on, through parent stages
	noShell    bool     // distroless or scratch
	user       string   // of the last USER, empty if none
	entrypoint []string // exec form
	cmd        []string // exec form
	env        []envVar // ENV, in order
	files      []string // the destinations of COPY and ADD
}

func (f *finalImage) hasFile(p string) bool {
	for _, d := range f.files {
		if d == p || strings.HasSuffix(d, "/") && strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

var heredocRe = regexp.MustCompile(`<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)(["']?)`)

func parseDockerfile(p string) (*dockerfile, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	df := &dockerfile{}
	named := map[string]*dockerStage{}
	for i := 0; i < len(lines); i++ {
		first := strings.TrimSpace(lines[i])
		if first == "" || strings.HasPrefix(first, "#") {
			continue
		}
		lineNo := i + 1
		var b strings.Builder
		for {
			l := strings.TrimRight(lines[i], " \t")
			if !strings.HasSuffix(l, `\`) {
				b.WriteString(l)
				break
			}
			b.WriteString(strings.TrimSuffix(l, `\`))
			b.WriteByte(' ')
			// Comments and blank lines inside a continuation are dropped.
			for i++; i < len(lines); i++ {
				if t := strings.TrimSpace(lines[i]); t != "" && !strings.HasPrefix(t, "#") {
					break
				}
			}
			if i >= len(lines) {
				break
			}
		}
		text := strings.TrimSpace(b.String())
		cmd, args := text, ""
		if k := strings.IndexAny(text, " \t"); k >= 0 {
			cmd, args = text[:k], strings.TrimSpace(text[k:])
		}
		cmd = strings.ToUpper(cmd)
		if cmd == "RUN" || cmd == "COPY" || cmd == "ADD" {
			for _, m := range heredocRe.FindAllStringSubmatch(args, -1) {
				if m[2] != m[4] {
					continue
				}
				for i++; i < len(lines); i++ {
					l := lines[i]
					if m[1] == "-" {
						l = strings.TrimLeft(l, "\t")
					}
					if l == m[3] {
						break
					}
				}
				if i >= len(lines) {
					return nil, fmt.Errorf("%s:%d: heredoc %s is not terminated", p, lineNo, m[3])
				}
			}
		}
		if cmd == "FROM" {
			var words []string
			for _, w := range strings.Fields(args) {
				if !strings.HasPrefix(w, "--") {
					words = append(words, w)
				}
			}
			if len(words) == 0 {
				return nil, fmt.Errorf("%s:%d: FROM without an image", p, lineNo)
			}
			st := &dockerStage{base: words[0], parent: named[strings.ToLower(words[0])]}
			if len(words) >= 3 && strings.EqualFold(words[1], "AS") {
				st.name = words[2]
				named[strings.ToLower(st.name)] = st
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			if cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("%s:%d: %s before the first FROM", p, lineNo, cmd)
		}
		st := df.stages[len(df.stages)-1]
		st.instrs = append(st.instrs, dockerInstr{cmd: cmd, args: args, line: lineNo})
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", p)
	}
	return df, nil
}

// chain returns the stages st is built on, the first one first, then st.
func (st *dockerStage) chain() []*dockerStage {
	var c []*dockerStage
	for s := st; s != nil; s = s.parent {
		c = append([]*dockerStage{s}, c...)
	}
	return c
}

func (st *dockerStage) env() []envVar {
	var env []envVar
	for _, s := range st.chain() {
		for _, in := range s.instrs {
			if in.cmd != "ENV" {
				continue
			}
			words, err := shellSplit(in.args)
			if err != nil || len(words) == 0 {
				continue
			}
			if !strings.Contains(words[0], "=") { // ENV K V
				k, v, _ := strings.Cut(in.args, " ")
				env = append(env, envVar{name: k, value: strings.TrimSpace(v), known: true})
				continue
			}
			for _, w := range words {
				k, v, _ := strings.Cut(w, "=")
				env = append(env, envVar{name: k, value: v, known: true})
			}
		}
	}
	return env
}

func (df *dockerfile) final() *finalImage {
	st := df.stages[len(df.stages)-1]
	chain := st.chain()
	f := &finalImage{rootBase: chain[0].base, env: st.env()}
	f.noShell = f.rootBase == "scratch" ||
		strings.HasPrefix(f.rootBase, "gcr.io/distroless/") && !strings.Contains(f.rootBase, "debug")
	for _, s := range chain {
		for _, in := range s.instrs {
			switch in.cmd {
			case "USER":
				f.user = in.args
			case "ENTRYPOINT":
				f.entrypoint = execForm(in.args)
			case "CMD":
				f.cmd = execForm(in.args)
			case "COPY", "ADD":
				var words []string
				for _, w := range strings.Fields(in.args) {
					if !strings.HasPrefix(w, "--") {
						words = append(words, w)
					}
				}
				if len(words) >= 2 {
					f.files = append(f.files, words[len(words)-1])
				}
			}
		}
	}
	return f
}

// execForm reads the JSON form of ENTRYPOINT and CMD; the shell form is
// returned as sh -c.
func execForm(args string) []string {
	var list []string
	if err := json.Unmarshal([]byte(args), &list); err == nil {
		return list
	}
	return []string{"/bin/sh", "-c", args}
}

var (
	goBuildRe = regexp.MustCompile(`\bgo\s+build\b`)
	cgoRe     = regexp.MustCompile(`\bCGO_ENABLED=(\S*)`)
)

// dockerfileProblems checks that the image is built in stages, with a static
// binary, and runs hookline as a user other than root.
func dockerfileProblems(df *dockerfile) []error {
	var p problems
	if len(df.stages) < 2 {
		p.addf("one stage only: build in a golang stage and copy the binary to a small final stage")
	}
	builds := 0
	for _, st := range df.stages {
		cgo := ""
		for _, e := range st.env() {
			if e.name == "CGO_ENABLED" {
				cgo = e.value
			}
		}
		for _, s := range st.chain() {
			for _, in := range s.instrs {
				if in.cmd == "ARG" && strings.HasPrefix(in.args, "CGO_ENABLED=") && cgo == "" {
					cgo = strings.TrimPrefix(in.args, "CGO_ENABLED=")
				}
			}
		}
		for _, in := range st.instrs {
			if in.cmd != "RUN" || !goBuildRe.MatchString(in.args) {
				continue
			}
			builds++
			v := cgo
			if m := cgoRe.FindStringSubmatch(in.args); m != nil {
				v = m[1]
			}
			if v != "0" {
				p.addf("line %d: go build without CGO_ENABLED=0 (ENV CGO_ENABLED=0 in the stage): the binary would need the C library of the build image", in.line)
			}
		}
	}
	if builds == 0 {
		p.addf("no RUN go build")
	}

	f := df.final()
	for _, err := range setEnvFlags(newServeFlagSet(), f.env, map[string]bool{}) {
		p.addf("ENV %v", err)
	}
	switch user := strings.SplitN(f.user, ":", 2)[0]; {
	case f.user == "" && !strings.Contains(f.rootBase, "nonroot"):
		p.addf("the final stage (FROM %s) runs as root: add USER with a non-root user, or use a distroless :nonroot image", f.rootBase)
	case f.user != "" && (user == "root" || user == "0"):
		p.addf("the final stage runs as root (USER %s)", f.user)
	}
	if len(f.entrypoint) == 0 || path.Base(f.entrypoint[0]) != "hookline" {
		p.addf("ENTRYPOINT %q is not the hookline binary", f.entrypoint)
	} else if !f.hasFile(f.entrypoint[0]) {
		p.addf("ENTRYPOINT %s is not copied into the final stage (it has %s)", f.entrypoint[0], strings.Join(f.files, ", "))
	}
	return p
}

// dockerignoreProblems checks that `COPY . .` leaves history and secrets out.
func dockerignoreProblems(contextDir string) []error {
	data, err := os.ReadFile(filepath.Join(contextDir, ".dockerignore"))
	if err != nil {
		return []error{fmt.Errorf("no .dockerignore in the build context %s: COPY . . would send .git, .env and build outputs to the builder", contextDir)}
	}
	patterns := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		patterns[strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/")] = true
	}
	var p problems
	for _, want := range []string{".git", ".env"} {
		if !patterns[want] {
			p.addf("%s/.dockerignore does not leave out %s", contextDir, want)
		}
	}
	return p
}
