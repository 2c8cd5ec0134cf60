package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// completionFiles are the scripts packaging/ ships, made by mecli completion.
var completionFiles = map[string]string{
	"bash": "../../packaging/completions/mecli.bash",
	"zsh":  "../../packaging/completions/_mecli",
	"fish": "../../packaging/completions/mecli.fish",
}

// Every shell's script is produced, names every top-level command and
// every command's words, passes the shell's syntax check when the shell is
// installed, and is the one packaging/ ships.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range completionShells {
		code, out, errOut := runCLI(t, nil, "completion", shell)
		if code != 0 || errOut != "" {
			t.Fatalf("mecli completion %s: exit %d, stderr %q", shell, code, errOut)
		}
		for _, c := range commands {
			for _, w := range strings.Fields(c.path) {
				if !strings.Contains(out, w) {
					t.Errorf("the %s script does not mention %q (of %s)", shell, w, c.path)
				}
			}
		}
		if bin, err := exec.LookPath(shell); err == nil {
			path := filepath.Join(t.TempDir(), "script")
			os.WriteFile(path, []byte(out), 0o600)
			if msg, err := exec.Command(bin, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n rejects the script: %v\n%s", shell, err, msg)
			}
		}
		shipped, err := os.ReadFile(completionFiles[shell])
		if err != nil || string(shipped) != out {
			t.Errorf("%s differs from 'mecli completion %s' (%v); run make completions", completionFiles[shell], shell, err)
		}
	}
	if code, _, errOut := runCLI(t, nil, "completion", "tcsh"); code != 2 || !strings.Contains(errOut, `"tcsh"`) {
		t.Errorf("mecli completion tcsh: exit %d, stderr %q", code, errOut)
	}
}

// Run by bash, the script completes command words, skips the values of
// flags such as --root, and offers a command's flags.
func TestBashCompletionCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	_, script, _ := runCLI(t, nil, "completion", "bash")
	for line, want := range map[string]string{
		"mecli ":                       "auth completion events help issue mcp node patch repo",
		"mecli node s":                 "start status stop",
		"mecli --root /tmp/x repo cl":  "clone",
		"mecli --json node start --de": "--detach",
		"mecli completion ":            "bash fish zsh",
		"mecli help n":                 "node",
	} {
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		var arr []string
		for _, w := range words {
			arr = append(arr, "'"+w+"'")
		}
		prog := script + "\nCOMP_WORDS=(" + strings.Join(arr, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _mecli; echo \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "--norc", "-c", prog).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("completing %q: %q (%v), want %q", line, got, err, want)
		}
	}
}
