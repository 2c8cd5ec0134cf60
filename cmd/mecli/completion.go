package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// Shell completion scripts, generated from the command table: the words
// that may follow each command path, and each command's flags.

// completionShells are the shells mecli completion writes a script for.
var completionShells = []string{"bash", "zsh", "fish"}

func init() {
	register(&command{
		path:  "completion",
		args:  "bash|zsh|fish",
		nargs: 1,
		short: "print a shell completion script for mecli",
		long: `Print a completion script for bash, zsh or fish, made from mecli's own command
table. For example:
  mecli completion bash > ~/.local/share/bash-completion/completions/mecli
  mecli completion zsh > ~/.zfunc/_mecli      # with ~/.zfunc in $fpath
  mecli completion fish > ~/.config/fish/completions/mecli.fish`,
		run: runCompletion,
	})
}

func runCompletion(_ context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	t := completionTable()
	switch args[0] {
	case "bash":
		writeBash(e.stdout, t)
	case "zsh":
		writeZsh(e.stdout, t)
	case "fish":
		writeFish(e.stdout, t)
	default:
		return usagef("unknown shell %q: want bash, zsh or fish", args[0])
	}
	return nil
}

// compFlag is a flag as completion offers it.
type compFlag struct {
	name, usage string
	value       bool // takes a value (--root DIR), so the next word is not a command
}

// compTable is what the scripts are made of.
type compTable struct {
	paths []string            // "" (mecli itself) and every command path and group, sorted
	next  map[string][]string // path → the words that may follow it
	flags map[string][]compFlag
	value []string // every flag that takes a value, "--root" and the like
	short map[string]string
}

func completionTable() compTable {
	t := compTable{next: map[string][]string{}, flags: map[string][]compFlag{}, short: map[string]string{}}
	add := func(path, word string) {
		if !slices.Contains(t.next[path], word) {
			t.next[path] = append(t.next[path], word)
		}
	}
	for _, c := range commands {
		words := strings.Fields(c.path)
		for k := range words {
			add(strings.Join(words[:k], " "), words[k])
		}
		t.short[c.path] = c.summary()
		fs := pflag.NewFlagSet(c.path, pflag.ContinueOnError)
		fs.Bool("json", false, "print JSON")
		fs.String("root", "", "node root directory")
		fs.BoolP("help", "h", false, "help for this command")
		if c.flags != nil {
			c.flags(fs)
		}
		t.flags[c.path] = compFlags(fs)
	}
	for _, s := range completionShells {
		add("completion", s)
	}
	for _, w := range t.next[""] {
		add("help", w)
	}
	add("", "help")
	t.flags[""] = []compFlag{{"json", "print machine-readable JSON", false}, {"root", "node root directory", true},
		{"help", "help for mecli", false}, {"version", "print mecli's version", false}}
	for p, fl := range t.flags {
		for _, f := range fl {
			if f.value && !slices.Contains(t.value, "--"+f.name) {
				t.value = append(t.value, "--"+f.name)
			}
		}
		t.paths = append(t.paths, p)
	}
	for p := range t.next {
		if _, ok := t.flags[p]; !ok {
			t.paths = append(t.paths, p)
		}
	}
	sort.Strings(t.paths)
	sort.Strings(t.value)
	for _, words := range t.next {
		sort.Strings(words)
	}
	return t
}

func compFlags(fs *pflag.FlagSet) []compFlag {
	var out []compFlag
	fs.VisitAll(func(f *pflag.Flag) {
		out = append(out, compFlag{name: f.Name, usage: f.Usage, value: f.NoOptDefVal == ""})
	})
	return out
}

// flagWords lists path's flags as --name words.
func (t compTable) flagWords(path string) string {
	var w []string
	for _, f := range t.flags[path] {
		w = append(w, "--"+f.name)
	}
	return strings.Join(w, " ")
}

func writeBash(w io.Writer, t compTable) {
	fmt.Fprintf(w, `# bash completion for mecli; made by 'mecli completion bash'.
_mecli() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmdpath="" word i
    case $prev in
    %s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
        %s) ((i++)) ;;
        -*) ;;
        *) cmdpath="${cmdpath:+$cmdpath }$word" ;;
        esac
    done
    if [[ $cur == -* ]]; then
        case $cmdpath in
`, strings.Join(t.value, "|"), strings.Join(t.value, "|"))
	for _, p := range t.paths {
		if fl := t.flagWords(p); fl != "" {
			fmt.Fprintf(w, "        %q) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", p, fl)
		}
	}
	fmt.Fprint(w, "        esac\n        return\n    fi\n    case $cmdpath in\n")
	for _, p := range t.paths {
		if next := t.next[p]; len(next) > 0 {
			fmt.Fprintf(w, "    %q) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", p, strings.Join(next, " "))
		}
	}
	fmt.Fprint(w, "    *) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n    esac\n}\ncomplete -F _mecli mecli\n")
}

func writeZsh(w io.Writer, t compTable) {
	fmt.Fprintf(w, `#compdef mecli
# zsh completion for mecli; made by 'mecli completion zsh'.
_mecli() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]} cmdpath="" word i
    case $prev in
    (%s) _files; return ;;
    esac
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        case $word in
        (%s) ((i++)) ;;
        (-*) ;;
        (*) cmdpath="${cmdpath:+$cmdpath }$word" ;;
        esac
    done
    if [[ $cur == -* ]]; then
        case $cmdpath in
`, strings.Join(t.value, "|"), strings.Join(t.value, "|"))
	for _, p := range t.paths {
		if fl := t.flagWords(p); fl != "" {
			fmt.Fprintf(w, "        (%q) compadd -- %s ;;\n", p, fl)
		}
	}
	fmt.Fprint(w, "        esac\n        return\n    fi\n    case $cmdpath in\n")
	for _, p := range t.paths {
		if next := t.next[p]; len(next) > 0 {
			fmt.Fprintf(w, "    (%q) compadd -- %s ;;\n", p, strings.Join(next, " "))
		}
	}
	fmt.Fprint(w, "    (*) _files ;;\n    esac\n}\nif [[ $funcstack[1] == _mecli ]]; then\n    _mecli \"$@\"\nelse\n    compdef _mecli mecli\nfi\n")
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, t compTable) {
	fmt.Fprintf(w, `# fish completion for mecli; made by 'mecli completion fish'.
function __mecli_path
    set -l out mecli
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case %s
                set skip 1
            case '-*'
            case '*'
                set -a out $word
        end
    end
    string join ' ' $out
end
complete -c mecli -f
`, strings.Join(t.value, " "))
	for _, p := range t.paths {
		at := fmt.Sprintf(`"test (__mecli_path) = %s"`, fishQuote(strings.TrimSpace("mecli "+p)))
		for _, word := range t.next[p] {
			desc := t.short[strings.TrimSpace(p+" "+word)]
			switch {
			case word == "help" && p == "":
				desc = "help for mecli or a command"
			case desc == "" && p == "":
				desc = "commands of " + word
			}
			fmt.Fprintf(w, "complete -c mecli -n %s -a %s -d %s\n", at, fishQuote(word), fishQuote(desc))
		}
		for _, f := range t.flags[p] {
			r := ""
			if f.value {
				r = " -r -F"
			}
			fmt.Fprintf(w, "complete -c mecli -n %s -l %s%s -d %s\n", at, f.name, r, fishQuote(f.usage))
		}
	}
}
