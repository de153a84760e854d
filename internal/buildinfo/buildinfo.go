// Package buildinfo tells which build of flashsale is running, for the
// OpenAPI document and anything else that reports a version.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Version, when set at link time, is the version reported:
//
//	go build -ldflags "-X github.com/flashsale/flashsale/internal/buildinfo.Version=v1.2.3" ./cmd/flashsale
//
// The Dockerfile sets it from its VERSION build argument.
var Version string

// String is the running build's version: Version when set; otherwise what
// the Go toolchain stamped into the binary (the module version, such as a
// pseudo-version from the commit, or else the commit itself); otherwise
// "dev".
func String() string { return version() }

var version = sync.OnceValue(func() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return fromBuildInfo(bi)
})

// fromBuildInfo picks the version out of the toolchain's stamp.
func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return rev
}
