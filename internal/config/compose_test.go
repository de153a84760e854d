package config

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is where docker-compose.yml and .env.example live.
const repoRoot = "../.."

// composeVariants are the ways the stack is meant to be started.
var composeVariants = map[string][]string{
	"default":         {"docker-compose.yml"},
	"production-like": {"docker-compose.yml", "docker-compose.prod.yml"},
}

// TestCompose loads each compose variant with compose-go (the loader docker
// compose uses: schema, interpolation, merge of the override file) with every
// profile on, and checks what the deployment story relies on. No Docker
// needed; when the docker CLI has its compose plugin, `docker compose config
// -q` must accept each variant too, and otherwise that half is skipped, even
// under CI=true, as CI machines have no Docker.
func TestCompose(t *testing.T) {
	for name, files := range composeVariants {
		t.Run(name, func(t *testing.T) {
			p := loadCompose(t, files)
			checkCompose(t, p, name == "production-like")
			dockerComposeConfig(t, files)
		})
	}
}

func loadCompose(t *testing.T, files []string) *types.Project {
	t.Helper()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(repoRoot, f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(repoRoot),
		cli.WithName("flashsale"),
		// Only this environment: not the developer's shell, not their .env.
		cli.WithEnv([]string{"AUTH_JWT_SECRET=" + secret, "ADMIN_EMAIL=admin@example.com"}),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose %v: %v", files, err)
	}
	return p
}

func checkCompose(t *testing.T, p *types.Project, prod bool) {
	for _, want := range []string{"postgres", "redis", "migrate", "api", "worker"} {
		if _, ok := p.Services[want]; !ok {
			t.Fatalf("no %s service; have %v", want, p.ServiceNames())
		}
	}
	redis := p.Services["redis"]
	if cmd := strings.Join(redis.Command, " "); !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis command %q lacks --appendonly yes (queue mode needs an AOF)", cmd)
	}
	pg := p.Services["postgres"]
	if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data"
	}) {
		t.Errorf("postgres keeps its data in no named volume: %+v", pg.Volumes)
	}
	for _, name := range []string{"postgres", "redis"} {
		if hc := p.Services[name].HealthCheck; hc == nil || len(hc.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
	}
	for _, name := range []string{"migrate", "api", "worker"} {
		s := p.Services[name]
		wants := map[string]string{"postgres": types.ServiceConditionHealthy}
		if name != "migrate" {
			wants["redis"] = types.ServiceConditionHealthy
			wants["migrate"] = types.ServiceConditionCompletedSuccessfully
		}
		for dep, cond := range wants {
			if got := s.DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends_on %s: condition %q, want %q", name, dep, got, cond)
			}
		}
		env := s.Environment
		if v := env["ADMIN_EMAIL"]; v == nil || *v != "admin@example.com" {
			t.Errorf("%s: ADMIN_EMAIL not passed from the environment: %v", name, v)
		}
		if prod {
			for _, v := range SecretFileVars {
				if v == "REDIS_URL" {
					continue // no Redis password in this stack
				}
				path := env[v+"_FILE"]
				if path == nil || !strings.HasPrefix(*path, "/run/secrets/") {
					t.Errorf("%s: %s_FILE = %v, want a file under /run/secrets/", name, v, path)
					continue
				}
				if !slices.ContainsFunc(s.Secrets, func(sc types.ServiceSecretConfig) bool {
					return "/run/secrets/"+sc.Source == *path
				}) {
					t.Errorf("%s: %s_FILE=%s, but no secret is mounted there", name, v, *path)
				}
				if plain := env[v]; plain != nil && *plain != "" {
					t.Errorf("%s: %s is set (%q) next to %s_FILE", name, v, *plain, v)
				}
			}
		} else if v := env["AUTH_JWT_SECRET"]; v == nil || *v != secret {
			t.Errorf("%s: AUTH_JWT_SECRET not passed from the environment", name)
		}
	}
	if prod {
		// The production-like api serves TLS with a certificate and key
		// mounted as secrets.
		api := p.Services["api"]
		for _, v := range []string{"TLS_CERT_FILE", "TLS_KEY_FILE"} {
			path := api.Environment[v]
			if path == nil || !strings.HasPrefix(*path, "/run/secrets/") {
				t.Errorf("api: %s = %v, want a file under /run/secrets/", v, path)
				continue
			}
			if !slices.ContainsFunc(api.Secrets, func(sc types.ServiceSecretConfig) bool {
				return "/run/secrets/"+sc.Source == *path
			}) {
				t.Errorf("api: %s=%s, but no secret is mounted there", v, *path)
			}
		}
		if v := pg.Environment["POSTGRES_PASSWORD_FILE"]; v == nil || *v == "" {
			t.Errorf("production-like postgres takes its password from the environment, not a file")
		}
	}
}

// dockerComposeConfig runs `docker compose config -q` when the docker CLI
// and its compose plugin are installed.
func dockerComposeConfig(t *testing.T, files []string) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Log("docker CLI not installed: docker compose config not run (compose-go checked the files)")
		return
	}
	if err := exec.Command("docker", "compose", "version").Run(); err != nil {
		t.Log("docker has no compose plugin: docker compose config not run (compose-go checked the files)")
		return
	}
	args := []string{"compose"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd := exec.Command("docker", append(args, "config", "-q")...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "AUTH_JWT_SECRET="+secret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker %s config -q: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestEnvExampleListsEverySetting: .env.example is where an operator learns
// the settings, so every variable Config reads, and every *_FILE form, must
// be in it (set or as a commented default).
func TestEnvExampleListsEverySetting(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^(?:# )?([A-Z][A-Z0-9_]*)=`)
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			listed[m[1]] = true
		}
	}
	var want []string
	for _, field := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		name, _, _ := strings.Cut(field.Tag.Get("env"), ",")
		if name != "" && name != "-" {
			want = append(want, name)
		}
	}
	for _, v := range SecretFileVars {
		want = append(want, v+"_FILE")
	}
	for _, name := range want {
		if !listed[name] {
			t.Errorf(".env.example does not list %s", name)
		}
	}
}
