package main

import (
	"runtime/debug"
	"strings"
)

// versionLine is what `potrack version` prints: the module version (a tag
// when built with `go install …@vX`, "(devel)" from a checkout), the commit
// and its time when the build recorded them, and whether the tree was
// modified.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "potrack (no build information)"
	}
	return formatVersion(info)
}

func formatVersion(info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var commit, when string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	parts := []string{"potrack", version}
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		parts = append(parts, "commit", commit)
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if dirty {
			notes = append(notes, "with uncommitted changes")
		}
		if len(notes) > 0 {
			parts = append(parts, "("+strings.Join(notes, ", ")+")")
		}
	}
	return strings.Join(append(parts, info.GoVersion), " ")
}
