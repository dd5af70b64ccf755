package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildCurrent builds ./cmd/outpost of the module this tool runs in (the
// current directory's) into dir.
func buildCurrent(dir, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/outpost")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/outpost (run from the repository root): %w", err)
	}
	return out, nil
}

// buildRef builds ./cmd/outpost as of git ref in a temporary worktree
// (removed afterwards) into dir.
func buildRef(ref, dir, name string) (string, error) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse: %w (run from the repository)", err)
	}
	root := strings.TrimSpace(string(top))
	src := filepath.Join(dir, "src-"+name)
	add := exec.Command("git", "-C", root, "worktree", "add", "--detach", src, ref)
	add.Stdout, add.Stderr = os.Stderr, os.Stderr
	if err := add.Run(); err != nil {
		return "", fmt.Errorf("git worktree add %s: %w", ref, err)
	}
	defer func() {
		_ = exec.Command("git", "-C", root, "worktree", "remove", "--force", src).Run()
	}()
	out := filepath.Join(dir, name)
	build := exec.Command("go", "build", "-o", out, "./cmd/outpost")
	build.Dir = src
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/outpost at %s: %w", ref, err)
	}
	return out, nil
}
