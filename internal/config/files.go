package config

import (
	"fmt"
	"maps"
	"os"
	"strings"
)

// SecretFileVars are the settings that may instead be read from a file named
// by the same variable with _FILE appended (AUTH_JWT_SECRET_FILE, ...), as
// Docker and Kubernetes secrets are mounted, so the value never sits in the
// environment, where `docker inspect` and /proc/<pid>/environ show it.
var SecretFileVars = []string{"AUTH_JWT_SECRET", "ADMIN_PASSWORD", "DATABASE_URL", "REDIS_URL"}

// readSecretFiles returns environ with each <name>_FILE of SecretFileVars
// replaced by <name> set to the file's contents, without the trailing line
// break that editors and `echo` leave. A name set both ways, or a file that
// cannot be read, is a problem, keyed by the name; environ itself is not
// changed.
func readSecretFiles(environ map[string]string) (map[string]string, []fileProblem) {
	var out map[string]string
	var problems []fileProblem
	for _, name := range SecretFileVars {
		path := environ[name+"_FILE"]
		if path == "" {
			continue
		}
		if environ[name] != "" {
			problems = append(problems, fileProblem{name, fmt.Errorf("config: %s and %s_FILE are both set; set one", name, name)})
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, fileProblem{name, fmt.Errorf("config: %s_FILE: %w", name, err)})
			continue
		}
		if out == nil {
			out = maps.Clone(environ)
		}
		out[name] = strings.TrimRight(string(b), "\r\n")
	}
	if out == nil {
		out = environ
	}
	return out, problems
}

// fileProblem is why the setting name could not be read from its file.
type fileProblem struct {
	name string
	err  error
}
