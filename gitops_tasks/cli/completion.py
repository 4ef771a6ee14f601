"""``completion bash|zsh|fish``: shell completion scripts generated from the parser itself.

Every command, sub-command and option the parser knows is completed, with the kinds for a
``KIND`` argument, an argument's choices (``-o table|json|yaml``), and files elsewhere. The zsh
script runs the bash function through zsh's ``bashcompinit``.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

PROG = "gitops-tasks"
SHELLS = ("bash", "zsh", "fish")

_EXAMPLES = f"""\
examples:
  source <({PROG} completion bash)                        # this shell; add it to ~/.bashrc to keep it
  {PROG} completion zsh > "${{fpath[1]}}/_{PROG}"           # zsh (needs compinit)
  {PROG} completion fish > ~/.config/fish/completions/{PROG}.fish
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a script completing gitops-tasks commands, kinds and options in SHELL.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    from gitops_tasks.cli import build_parser

    nodes = commands(build_parser())
    print({"bash": bash, "zsh": zsh, "fish": fish}[args.shell](nodes), end="")
    return 0


@dataclass
class Node:
    """One command path (``gitops-tasks images update``) as completion sees it."""

    path: tuple[str, ...]
    subcommands: dict[str, str] = field(default_factory=dict)  # name → help
    words: list[str] = field(default_factory=list)  # what the first positional argument takes
    options: list[str] = field(default_factory=list)
    valued: list[str] = field(default_factory=list)  # options followed by a value
    choices: dict[str, list[str]] = field(default_factory=dict)  # option → its values
    help: dict[str, str] = field(default_factory=dict)  # option → help

    @property
    def key(self) -> str:
        return " ".join((PROG, *self.path))


#: Words a command takes in place of a kind (``get all``, ``get sources git``, ``export all``).
KIND_ALIASES: dict[tuple[str, ...], list[str]] = {("get",): ["all", "sources"], ("export",): ["all"]}


def _kinds() -> list[str]:
    from gitops_tasks.objects.kinds import KINDS

    return [kind.lower() for kind in KINDS]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Node]:
    """Every command path of ``parser``, depth first (the root first)."""
    node, nested = Node(path), []
    positional_seen = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                node.subcommands[name] = helps.get(name, "")
                nested += commands(subparser, (*path, name))
        elif action.option_strings:
            node.options += action.option_strings
            for option in action.option_strings:
                node.help[option] = "" if action.help == argparse.SUPPRESS else (action.help or "")
            if action.nargs != 0:
                node.valued += action.option_strings
            if action.choices:
                for option in action.option_strings:
                    node.choices[option] = [str(c) for c in action.choices]
        elif not positional_seen:
            positional_seen = True
            node.words = _positional_words(action)
            if action.dest == "kind":
                node.words = [*KIND_ALIASES.get(path, []), *node.words]
    return [node, *nested]


def _positional_words(action: argparse.Action) -> list[str]:
    if action.choices:
        return [str(c) for c in action.choices]
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if metavar and metavar.islower() and metavar.isalpha():  # a fixed word: `diff kustomization`
        return [metavar]
    return _kinds() if action.dest == "kind" else []


def _assoc(name: str, values: dict[str, str]) -> str:
    items = " ".join(f"[{shlex.quote(k)}]={shlex.quote(v)}" for k, v in values.items() if v)
    return f"declare -gA {name}=({items})"


def bash(nodes: list[Node]) -> str:
    choices = {f"{n.key} {opt}": " ".join(vals) for n in nodes for opt, vals in n.choices.items()}
    tables = "\n".join(
        [
            _assoc("_gitops_tasks_subs", {n.key: " ".join(n.subcommands) for n in nodes}),
            _assoc("_gitops_tasks_words", {n.key: " ".join(n.words) for n in nodes}),
            _assoc("_gitops_tasks_opts", {n.key: " ".join(n.options) for n in nodes}),
            _assoc("_gitops_tasks_valued", {n.key: " ".join(n.valued) for n in nodes}),
            _assoc("_gitops_tasks_choices", choices),
        ]
    )
    return f"""\
# bash completion for {PROG}: source <({PROG} completion bash)
{tables}

_gitops_tasks() {{
    [[ -n ${{ZSH_VERSION-}} ]] && setopt localoptions ksharrays
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD - 1]}}
    local cmdpath={PROG} word npos=0 skip=0 i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        if ((skip)); then skip=0; continue; fi
        if [[ $word == -* ]]; then
            [[ " ${{_gitops_tasks_valued[$cmdpath]-}} " == *" $word "* ]] && skip=1
        elif [[ " ${{_gitops_tasks_subs[$cmdpath]-}} " == *" $word "* ]]; then
            cmdpath="$cmdpath $word"; npos=0
        else
            npos=$((npos + 1))
        fi
    done
    COMPREPLY=()
    if ((skip)); then
        local values=${{_gitops_tasks_choices["$cmdpath $prev"]-}}
        [[ -n $values ]] && COMPREPLY=($(compgen -W "$values" -- "$cur"))
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${{_gitops_tasks_opts[$cmdpath]-}}" -- "$cur"))
        return 0
    fi
    local offer=${{_gitops_tasks_subs[$cmdpath]-}}
    [[ -z $offer && $npos -eq 0 ]] && offer=${{_gitops_tasks_words[$cmdpath]-}}
    [[ -n $offer ]] && COMPREPLY=($(compgen -W "$offer" -- "$cur"))
    return 0
}}
complete -o default -F _gitops_tasks {PROG}
"""


def zsh(nodes: list[Node]) -> str:
    return (
        f"#compdef {PROG}\n# zsh completion for {PROG}: the bash function, through bashcompinit\n"
        "(( $+functions[compdef] )) || { autoload -U compinit && compinit; }\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(nodes)
    )


def _fish_text(text: str) -> str:
    return shlex.quote(text.replace("\n", " "))


def fish(nodes: list[Node]) -> str:
    lines = [
        f"# fish completion for {PROG}: {PROG} completion fish | source",
        f"complete -c {PROG} -e",
        "# How many words that are not options (nor an option's value: $argv) the line has so far.",
        "function __gitops_tasks_plain_words",
        "    set -l count 0",
        "    set -l skip 0",
        "    for word in (commandline -opc)[2..-1]",
        "        if test $skip -eq 1",
        "            set skip 0",
        "        else if string match -q -- '-*' $word",
        "            contains -- $word $argv; and set skip 1",
        "        else",
        "            set count (math $count + 1)",
        "        end",
        "    end",
        "    echo $count",
        "end",
    ]
    for node in nodes:
        depth = len(node.path)
        here = f"test (__gitops_tasks_plain_words {' '.join(node.valued)}) -eq {depth}"
        seen = "".join(f"__fish_seen_subcommand_from {word}; and " for word in node.path)
        for name, help_text in node.subcommands.items():
            lines.append(
                f"complete -c {PROG} -f -n {shlex.quote(seen + here)} -a {name} -d {_fish_text(help_text)}"
            )
        if node.words and not node.subcommands:
            words = " ".join(node.words)
            lines.append(f"complete -c {PROG} -f -n {shlex.quote(seen + here)} -a {shlex.quote(words)}")
        if not node.path:
            continue
        condition = shlex.quote(seen.removesuffix("; and "))
        for option in node.options:
            flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
            values = node.choices.get(option)
            takes = (
                f" -x -a {shlex.quote(' '.join(values))}"
                if values
                else (" -r" if option in node.valued else "")
            )
            lines.append(
                f"complete -c {PROG} -n {condition} {flag}{takes} -d {_fish_text(node.help.get(option, ''))}"
            )
    return "\n".join(lines) + "\n"
