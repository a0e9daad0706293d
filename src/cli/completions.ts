/**
 * `bottle completions bash|zsh|fish`: a completion script for that shell,
 * made from the command tree as it is when the script is asked for, so it
 * knows every command, flag and choice this bottle has. Agent and bottle
 * names change from one directory and one minute to the next: the script
 * asks `bottle completions --names agents|bottles` for them as it completes,
 * which prints nothing at all when it cannot tell (a completion must never
 * put an error in the user's prompt).
 */
import { Argument, type Command, Option } from "commander";
import { configOf, discover } from "./agent_options.ts";
import { bottlesOf } from "./backends.ts";
import type { CliContext } from "./context.ts";
import { UserError } from "../errors.ts";

const SHELLS = ["bash", "zsh", "fish"] as const;
type Shell = (typeof SHELLS)[number];
const NAME_KINDS = ["agents", "bottles"] as const;
type NameKind = (typeof NAME_KINDS)[number];

/** How long a completion waits for names: an engine that hangs must not hang the prompt. */
const NAMES_TIMEOUT_MS = 5_000;

export function registerCompletions(program: Command, ctx: CliContext): void {
  program.command("completions")
    .description("Print a completion script for bash, zsh or fish")
    .addArgument(new Argument("[shell]", "the shell to complete for").choices(SHELLS))
    .addOption(
      new Option("--names <kind>", "print agent or bottle names, one a line (the scripts use it)")
        .choices(NAME_KINDS)
        .hideHelp(),
    )
    .action(async (shell: Shell | undefined, opts: { names?: NameKind }) => {
      if (opts.names) {
        const names = await namesOf({ ...ctx, err: () => {} }, program, opts.names)
          .catch(() => []);
        if (names.length) ctx.out(names.join("\n"));
        return;
      }
      if (!shell) {
        throw new UserError("Name a shell: bottle completions bash, zsh or fish (see --help)");
      }
      ctx.out(SCRIPTS[shell](commandSpec(program)));
    });
}

/** The agents `bottle agents` lists here, or the bottles `bottle ls` lists. */
async function namesOf(ctx: CliContext, program: Command, kind: NameKind): Promise<string[]> {
  const lookUp = async () =>
    kind === "agents"
      ? [...(await discover(ctx, configOf(program, {}))).agents.keys()]
      : (await (await bottlesOf(ctx)).list()).map((b) => b.name);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("Names took too long")), NAMES_TIMEOUT_MS);
  });
  try {
    return await Promise.race([lookUp(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a word in some place may be. */
export type Values =
  | { kind: "none" }
  | { kind: "words"; words: string[] }
  | { kind: "names"; names: NameKind }
  | { kind: "files" };

export interface OptionSpec {
  short?: string;
  long?: string;
  description: string;
  /** Absent for a flag; the value's name (`<file>` → "file") and what it may be otherwise. */
  value?: { name: string; values: Values };
  repeatable: boolean;
}

export interface ArgumentSpec {
  name: string;
  values: Values;
  variadic: boolean;
}

export interface CommandSpec {
  /** The words that reach it from its parent: its name, then its aliases. */
  names: string[];
  description: string;
  options: OptionSpec[];
  args: ArgumentSpec[];
  commands: CommandSpec[];
}

/** A command and everything under it, as its help shows them (hidden ones left out). */
export function commandSpec(cmd: Command): CommandSpec {
  const help = cmd.createHelp();
  const names = (c: Command) => [c.name(), ...c.aliases()];
  const visible = help.visibleCommands(cmd);
  return {
    names: names(cmd),
    description: cmd.description(),
    options: help.visibleOptions(cmd).map(optionSpec),
    args: cmd.registeredArguments.map((a) => ({
      name: a.name(),
      variadic: a.variadic,
      values: valuesOf(a.name(), a.argChoices),
    })),
    commands: visible.map((c) => {
      const spec = commandSpec(c);
      // Commander's own `help [command]` is no child of cmd's: it names cmd's children.
      if (cmd.commands.includes(c) || !spec.args[0]) return spec;
      const words = visible.filter((s) => cmd.commands.includes(s)).flatMap(names);
      return { ...spec, args: [{ ...spec.args[0], values: { kind: "words", words } }] };
    }),
  };
}

function optionSpec(o: Option): OptionSpec {
  const name = /[<[]([^>\]]*?)(?:\.\.\.)?[>\]]/.exec(o.flags)?.[1] ?? "value";
  return {
    ...(o.short ? { short: o.short } : {}),
    ...(o.long ? { long: o.long } : {}),
    description: o.description,
    ...(o.required || o.optional ? { value: { name, values: valuesOf(name, o.argChoices) } } : {}),
    repeatable: o.variadic || Array.isArray(o.defaultValue),
  };
}

/** Choices are listed; an agent, a bottle or a file by the name of its place. */
function valuesOf(name: string, choices: string[] | undefined): Values {
  if (choices?.length) return { kind: "words", words: choices };
  if (name === "agent") return { kind: "names", names: "agents" };
  if (name === "bottle") return { kind: "names", names: "bottles" };
  if (name === "file") return { kind: "files" };
  return { kind: "none" };
}

/** Every command of the tree, with the words that reach it (canonical first) and every way to type them. */
interface Place {
  spec: CommandSpec;
  path: string[];
  typed: string[][];
}

function places(root: CommandSpec): Place[] {
  const out: Place[] = [];
  const walk = (spec: CommandSpec, path: string[], typed: string[][]) => {
    out.push({ spec, path, typed });
    for (const c of spec.commands) {
      walk(c, [...path, c.names[0]!], typed.flatMap((t) => c.names.map((n) => [...t, n])));
    }
  };
  walk(root, [], [[]]);
  return out;
}

function flagsOf(o: OptionSpec): string[] {
  return [o.short, o.long].filter((f): f is string => f !== undefined);
}

/** POSIX single quotes (bash and zsh alike). */
function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const SCRIPTS: Record<Shell, (root: CommandSpec) => string> = { bash, zsh, fish };

function bash(root: CommandSpec): string {
  const specs: string[] = [];
  const values: string[] = [];
  const args: string[] = [];
  const action = (v: Values, cur: string) =>
    v.kind === "words"
      ? `_bottle_add "${cur}" ${v.words.map(sq).join(" ")}`
      : v.kind === "names"
      ? `_bottle_names ${v.names} "${cur}"`
      : v.kind === "files"
      ? `_bottle_files "${cur}"`
      : "";
  for (const { spec, typed } of places(root)) {
    const keys = typed.map((t) => t.join(" "));
    const last = spec.args.at(-1);
    specs.push(
      `    ${keys.map(sq).join("|")})\n      subs=${
        sq(spec.commands.flatMap((c) => c.names).join(" "))
      }\n      opts=${sq(spec.options.flatMap(flagsOf).join(" "))}\n      vopts=${
        sq(spec.options.filter((o) => o.value).flatMap(flagsOf).join(" "))
      }\n      nargs=${spec.args.length} rest=${last?.variadic ? 1 : ""} ;;`,
    );
    for (const o of spec.options) {
      const a = o.value && action(o.value.values, "$3");
      if (!a) continue;
      const pats = keys.flatMap((k) => flagsOf(o).map((f) => sq(`${k} ${f}`)));
      values.push(`    ${pats.join("|")}) ${a} ;;`);
    }
    spec.args.forEach((arg, i) => {
      const a = action(arg.values, "$2");
      if (a) args.push(`    ${keys.map((k) => sq(`${k} ${i}`)).join("|")}) ${a} ;;`);
    });
  }
  return `# bash completion for bottle, made by \`bottle completions bash\` (make it again after an upgrade).
# Load it in ~/.bashrc: source <(bottle completions bash)

# _bottle_spec PATH: what the command PATH ("" for bottle itself) takes.
_bottle_spec() {
  case $1 in
${specs.join("\n")}
    *) subs='' opts='' vopts='' nargs=0 rest='' ;;
  esac
}

# _bottle_value "PATH OPTION" PREFIX: the values OPTION of PATH may take.
_bottle_value() {
  case "$1 $2" in
${values.join("\n")}
  esac
}

# _bottle_arg "PATH N" PREFIX: what PATH's Nth (from 0) argument may be.
_bottle_arg() {
  case $1 in
${args.join("\n")}
  esac
}

# _bottle_add PREFIX WORD...: the words starting with PREFIX (no expansion of any).
_bottle_add() {
  local cur=$1 w
  shift
  for w; do [[ $w == "$cur"* ]] && COMPREPLY+=("$pre$w"); done
}

_bottle_names() {
  local w
  while IFS= read -r w; do
    [[ -n $w && $w == "$2"* ]] && COMPREPLY+=("$pre$w")
  done < <(command bottle completions --names "$1" 2>/dev/null)
}

_bottle_files() {
  local IFS=$'\\n' f
  compopt -o filenames 2>/dev/null
  for f in $(compgen -f -- "$1"); do COMPREPLY+=("$pre$f"); done
}

_bottle() {
  # Bash splits --opt=value at "="; join them back.
  local -a words=()
  local i w cword=0 glue=''
  for ((i = 0; i < \${#COMP_WORDS[@]}; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ -n $glue ]]; then
      words[\${#words[@]} - 1]+=$w
      glue=''
    elif [[ $w == = && \${#words[@]} -gt 0 && \${words[\${#words[@]} - 1]} == --* && \${words[\${#words[@]} - 1]} != *=* ]]; then
      words[\${#words[@]} - 1]+=$w
      glue=1
    else
      words+=("$w")
    fi
    ((i == COMP_CWORD)) && cword=$((\${#words[@]} - 1))
  done
  local path='' subs opts vopts nargs rest npos=0 skip='' pre=''
  COMPREPLY=()
  _bottle_spec ''
  for ((i = 1; i < cword; i++)); do
    w=\${words[i]}
    if [[ -n $skip ]]; then
      skip=''
      continue
    fi
    case $w in
      --) return 0 ;;
      --*=*) ;;
      -?*) [[ " $vopts " == *" $w "* ]] && skip=1 ;;
      *)
        if ((npos == 0)) && [[ " $subs " == *" $w "* ]]; then
          path=\${path:+$path }$w
          _bottle_spec "$path"
        else
          npos=$((npos + 1))
        fi
        ;;
    esac
  done
  local cur=\${words[cword]}
  if [[ -n $skip ]]; then
    _bottle_value "$path" "\${words[cword - 1]}" "$cur"
    return 0
  fi
  case $cur in
    --*=*)
      # Where bash did not split at "=", the word replaced is the whole of it.
      [[ \${COMP_WORDS[COMP_CWORD]} == *=* && \${COMP_WORDS[COMP_CWORD]} != = ]] && pre=\${cur%%=*}=
      _bottle_value "$path" "\${cur%%=*}" "\${cur#*=}"
      ;;
    -*) _bottle_add "$cur" $opts ;;
    *)
      if ((npos == 0)) && [[ -n $subs ]]; then
        _bottle_add "$cur" $subs
      elif ((npos < nargs)) || [[ -n $rest && $nargs -gt 0 ]]; then
        ((npos >= nargs)) && npos=$((nargs - 1))
        _bottle_arg "$path $npos" "$cur"
      fi
      ;;
  esac
  return 0
}

complete -F _bottle bottle
`;
}

/** Inside an `_arguments` spec's `[description]`. */
function zshDescription(s: string): string {
  return s.replace(/[\\[\]]/g, (c) => `\\${c}`);
}

function zsh(root: CommandSpec): string {
  const action = (v: Values) =>
    v.kind === "words"
      ? `(${v.words.join(" ")})`
      : v.kind === "names"
      ? `_bottle_names ${v.names}`
      : v.kind === "files"
      ? "_files"
      : " ";
  const fn = (path: string[]) => ["_bottle", ...path].join("__");
  const functions = places(root).map(({ spec, path }) => {
    const specs = spec.options.flatMap((o) => {
      const flags = flagsOf(o);
      const exclude = o.repeatable ? "*" : flags.length > 1 ? `(${flags.join(" ")})` : "";
      const arg = o.value ? `:${o.value.name}:${action(o.value.values)}` : "";
      return flags.map((f) =>
        sq(
          `${exclude}${f}${o.value ? (f.startsWith("--") ? "=" : "+") : ""}[${
            zshDescription(o.description)
          }]${arg}`,
        )
      );
    });
    if (!spec.commands.length) {
      specs.push(
        ...spec.args.map((a, i) => sq(`${a.variadic ? "*" : i + 1}:${a.name}:${action(a.values)}`)),
      );
      return `${fn(path)}() {
  # After "--" come a prompt or a command: nothing of bottle's.
  (( \${\${(@)words[1,CURRENT-1]}[(I)--]} )) && return 1
  _arguments -s -S \\
    ${specs.join(" \\\n    ")}
}`;
    }
    const described = spec.commands.flatMap((c) =>
      c.names.map((n) => sq(`${n.replaceAll(":", "\\:")}:${c.description}`))
    );
    const dispatch = spec.commands.map((c) =>
      `        ${c.names.map(sq).join("|")}) ${fn([...path, c.names[0]!])} && ret=0 ;;`
    );
    const context = ["bottle", ...path].join("-");
    return `${fn(path)}() {
  local curcontext=$curcontext state state_descr line ret=1
  typeset -A opt_args
  _arguments -s -S -C \\
    ${[...specs, sq(": :->command"), sq("*:: :->arg")].join(" \\\n    ")} && ret=0
  case $state in
    command)
      local -a commands=(
        ${described.join("\n        ")}
      )
      _describe -t commands ${sq(`${["bottle", ...path].join(" ")} command`)} commands && ret=0
      ;;
    arg)
      curcontext=\${curcontext%:*:*}:${context}-$words[1]:
      case $words[1] in
${dispatch.join("\n")}
      esac
      ;;
  esac
  return ret
}`;
  });
  return `#compdef bottle
# zsh completion for bottle, made by \`bottle completions zsh\` (make it again after an upgrade).
# Load it in ~/.zshrc, after compinit: source <(bottle completions zsh)
# or save it as _bottle in a directory of $fpath.

# _bottle_names [compadd options] agents|bottles: asks bottle, which says
# nothing when it cannot tell. _arguments puts its options before the kind.
_bottle_names() {
  local -a names
  names=(\${(f)"$(command bottle completions --names \${@[-1]} 2>/dev/null)"})
  compadd "\${@[1,-2]}" -a names
}

${functions.join("\n\n")}

if [[ \${funcstack[1]} == _bottle ]]; then
  _bottle "$@"
else
  compdef _bottle bottle
fi
`;
}

/** fish single quotes. */
function fq(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

function fish(root: CommandSpec): string {
  const action = (v: Values) =>
    v.kind === "words"
      ? `-f -a ${fq(v.words.join(" "))}`
      : v.kind === "names"
      ? `-f -a ${fq(`(__bottle_names ${v.names})`)}`
      : v.kind === "files"
      ? "-F"
      : "-f";
  const subs: string[] = [];
  const vopts: string[] = [];
  const rules: string[] = [];
  const at = (n: string, path: string[]) => `-n ${fq(["__bottle_at", n, ...path].join(" "))}`;
  for (const { spec, path, typed } of places(root)) {
    const cases = typed.map((t) => fq(t.join(" "))).join(" ");
    if (spec.commands.length) {
      subs.push(
        `        case ${cases}\n            printf '%s\\n' ${
          spec.commands.flatMap((c) => c.names).join(" ")
        }`,
      );
    }
    const valued = spec.options.filter((o) => o.value).flatMap(flagsOf);
    if (valued.length) {
      vopts.push(`        case ${cases}\n            printf '%s\\n' ${valued.join(" ")}`);
    }
    for (const c of spec.commands) {
      for (const n of c.names) {
        rules.push(`complete -c bottle ${at("0", path)} -a ${fq(n)} -d ${fq(c.description)}`);
      }
    }
    for (const o of spec.options) {
      const flags = [
        ...(o.short ? [o.short.length === 2 ? `-s ${o.short[1]}` : `-o ${o.short.slice(1)}`] : []),
        ...(o.long ? [`-l ${o.long.slice(2)}`] : []),
      ];
      const value = o.value ? ` -r ${action(o.value.values)}` : "";
      rules.push(
        `complete -c bottle ${at("-", path)} ${flags.join(" ")}${value} -d ${fq(o.description)}`,
      );
    }
    if (!spec.commands.length) {
      spec.args.forEach((a, i) => {
        if (a.values.kind === "none") return;
        rules.push(
          `complete -c bottle ${at(a.variadic ? `${i}+` : `${i}`, path)} ${action(a.values)}`,
        );
      });
    }
  }
  return `# fish completion for bottle, made by \`bottle completions fish\` (make it again after an upgrade).
# Load it: bottle completions fish | source
# or keep it: bottle completions fish > ~/.config/fish/completions/bottle.fish

complete -c bottle -e
complete -c bottle -f

# __bottle_subs PATH...: the subcommands of command PATH (none for bottle itself).
function __bottle_subs
    switch "$argv"
${subs.join("\n")}
    end
end

# __bottle_vopts PATH...: the options of command PATH that take a value.
function __bottle_vopts
    switch "$argv"
${vopts.join("\n")}
    end
end

# __bottle_names agents|bottles: asks bottle, which says nothing when it cannot tell.
function __bottle_names
    command bottle completions --names $argv[1] 2>/dev/null
end

# __bottle_at N PATH...: whether the word being completed is for command PATH
# (none for bottle itself) and, unless N is "-", is its Nth argument (from 0;
# "N+" for N or later).
function __bottle_at
    set -l n $argv[1]
    set -l want $argv[2..-1]
    set -l tokens (commandline -opc)
    set -l path
    set -l npos 0
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip = 1
            set skip 0
        else if test "$t" = --
            return 1
        else if string match -q -- '--*=*' $t
            continue
        else if string match -q -- '-?*' $t
            contains -- $t (__bottle_vopts $path); and set skip 1
        else if test $npos = 0; and contains -- $t (__bottle_subs $path)
            set -a path $t
        else
            set npos (math $npos + 1)
        end
    end
    test "$path" = "$want"; or return 1
    test "$n" = -; and return 0
    test $skip = 0; or return 1
    if string match -q -- '*+' $n
        test $npos -ge (string trim -r -c + -- $n)
    else
        test $npos = $n
    end
end

${rules.join("\n")}
`;
}
