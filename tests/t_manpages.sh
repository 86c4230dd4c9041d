# The man pages: `mandoc -Tlint` finds nothing in them, and they document
# every option, command, flag and configuration key that the programs
# accept, and nothing else. What the programs accept is read from their
# usage texts and from `nido config`. Flags that the usage texts leave out
# are listed in KNOWN_EXTRA below, and each is run once to show that the
# program accepts it.
source "$(dirname "$0")/lib.sh"
t_setup

MAN="$T_ROOT/man"
PAGES=("$MAN/nidofs.1" "$MAN/nido.1" "$MAN/nidofs.5")

# lint_clean PAGE: mandoc -Tlint prints nothing for PAGE. Two messages depend
# on the machine, not on the page, and are left out: "referenced manual not
# found" (nido(1) and nidofs(5) are not installed while the tests run) and
# "outdated mandoc.db".
lint_clean() {
	local out
	out=$(mandoc -Tlint -W style "$1" 2>&1 |
		grep -v -e 'referenced manual not found' -e 'outdated mandoc.db')
	[ -z "$out" ] && return 0
	printf '# %s\n' "$out" >&2
	return 1
}

for page in "${PAGES[@]}"; do
	check "lint $(basename "$page")" lint_clean "$page"
done

if [ ! -x "$NIDOFS" ] || [ ! -x "$NIDO" ]; then
	not_ok "programs built: run make first"
	t_done
fi

# The usage texts, as the programs print them.
"$NIDOFS" -h >"$T_DIR/nidofs.usage" 2>&1
{
	"$NIDO" -h
	# Each command prints its own usage when its arguments are wrong.
	"$NIDO" image
	"$NIDO" spawn
	"$NIDO" ls extra
	for cmd in info start stop rm ssh; do
		"$NIDO" "$cmd"
	done
	"$NIDO" config a b c
} >"$T_DIR/nido.usage" 2>&1
mkdir -p "$T_DIR/empty"
NIDO_HOME="$T_DIR/empty" "$NIDO" config >"$T_DIR/config.defaults"

# Flags that the usage texts leave out, one "COMMAND FLAG" pair a line, with
# "-" for flags given without a command.
KNOWN_EXTRA="- -h
- --help
- -V
- help
spawn -y"

# Shows that the extra flags are accepted: each leads past the point where
# an unknown flag would be rejected.
extra_accepted() {
	local out
	"$NIDO" -h | grep -q '^usage: nido' || return 1
	"$NIDO" --help | grep -q '^usage: nido' || return 1
	"$NIDO" help | grep -q '^usage: nido' || return 1
	"$NIDO" -V | grep -q '^nido [0-9]' || return 1
	# A tag that is not in the catalog stops spawn before it creates anything.
	out=$(NIDO_HOME="$T_DIR/empty" "$NIDO" spawn probe --image nosuch:1 -y 2>&1)
	if [[ $out != *"nosuch:1: not in the catalog"* ]]; then
		echo "# spawn -y: $out" >&2
		return 1
	fi
	# The same run with an unknown flag shows what a rejection looks like.
	out=$(NIDO_HOME="$T_DIR/empty" "$NIDO" spawn probe --image nosuch:1 -q 2>&1)
	[[ $out == *"unexpected argument '-q'"* ]]
}
check "extra flags accepted" extra_accepted
printf '%s\n' "$KNOWN_EXTRA" >"$T_DIR/known-extra"

# The comparisons read mdoc with a small parser: it records every .It line
# with its section, subsection, list depth and the .It line it is nested in.
cat >"$T_DIR/doccheck.py" <<'PY'
import re
import sys
from collections import namedtuple

FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
MACRO = re.compile(r"[A-Z][a-z]{1,2}")
DELIMITERS = ("|", ",", ";", "[", "]")

Item = namedtuple("Item", "section subsection depth parent head")


def list_items(page):
    """Returns an Item for each .It line of page."""
    items, open_items = [], []
    section = subsection = ""
    depth = 0
    for line in open(page, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith(".Sh "):
            section, subsection = line[4:], ""
        elif line.startswith(".Ss "):
            subsection = line[4:]
        elif line.startswith(".Bl"):
            depth += 1
        elif line.startswith(".El"):
            depth -= 1
            del open_items[depth:]
        elif line.startswith(".It"):
            del open_items[depth - 1:]
            parent = open_items[-1] if open_items else ""
            open_items.append(line)
            items.append(Item(section, subsection, depth, parent, line))
    return items


def words_of(line):
    """Splits an mdoc macro line into words, the leading macro without its dot."""
    if not line.startswith("."):
        return []
    words = line.split()
    return [words[0][1:]] + words[1:]


def macro_args(line, macro):
    """Returns the arguments of every `macro` on a line; Fl arguments as flags."""
    args, inside = [], False
    for word in words_of(line):
        if word == macro:
            inside = True
        elif MACRO.fullmatch(word):
            inside = False
        elif inside and word not in DELIMITERS:
            word = word.replace("\\-", "-").replace("\\&", "")
            args.append("-" + word if macro == "Fl" else word)
    return args


def first_args(line, macro):
    """Returns the arguments of the first `macro` on a line."""
    words = words_of(line)
    if macro not in words:
        return []
    args = []
    for word in words[words.index(macro) + 1:]:
        if MACRO.fullmatch(word):
            break
        args.append(word)
    return args


def section_lines(page, name):
    lines, inside = [], False
    for line in open(page, encoding="utf-8"):
        if line.startswith(".Sh "):
            inside = line[4:].strip() == name
        elif inside:
            lines.append(line.rstrip("\n"))
    return lines


def compare(label, accepted, documented):
    missing = sorted(set(accepted) - set(documented))
    extra = sorted(set(documented) - set(accepted))
    if missing:
        print(f"# {label}: accepted but not documented: {' '.join(missing)}", file=sys.stderr)
    if extra:
        print(f"# {label}: documented but not accepted: {' '.join(extra)}", file=sys.stderr)
    if not accepted:
        print(f"# {label}: found nothing to compare", file=sys.stderr)
    return not missing and not extra and bool(accepted)


def known_extra(path):
    extra = {}
    for line in open(path):
        command, flag = line.split()
        extra.setdefault("" if command == "-" else command, set()).add(flag)
    return extra


def nidofs_usage(path):
    text = open(path).read()
    synopsis = text.split("\n\n")[0]
    return {
        "flags": set(FLAG.findall(text)),
        # "  -o catalog=FILE|URL ..." and "  -d, -o debug ..." in the option list.
        "suboptions": set(re.findall(r"^\s+(?:-\w, )?-o ([a-z_]+)", text, re.M)),
        "synopsis": set(FLAG.findall(synopsis)) | set(re.findall(r"-o ([a-z_]+)=", synopsis)),
    }


def check_nidofs(page, usage_path, part):
    usage = nidofs_usage(usage_path)
    items = list_items(page)
    if part == "options":
        flags = [flag for item in items
                 if item.section == "DESCRIPTION" and not item.subsection and item.depth == 1
                 for flag in macro_args(item.head, "Fl")]
        return compare("nidofs options", usage["flags"], flags)
    if part == "suboptions":
        names = [first_args(item.head, "Cm")[0] for item in items
                 if item.depth == 2 and item.parent.startswith(".It Fl o")]
        return compare("nidofs -o options", usage["suboptions"], names)
    lines = section_lines(page, "SYNOPSIS")
    words = [flag for line in lines for flag in macro_args(line, "Fl")]
    words += [name for line in lines if "Fl o" in line for name in macro_args(line, "Cm")]
    return compare("nidofs SYNOPSIS", usage["synopsis"], words)


def nido_usage(path):
    """Returns {command: flags} from the usage texts; "" maps to the global flags."""
    commands = {}
    for line in open(path):
        found = re.search(r"(?:usage: |^\s+)nido (.*)$", line)
        if not found or found.group(1).startswith("COMMAND"):
            continue
        rest = found.group(1)
        if rest.startswith("-"):
            commands.setdefault("", set()).update(FLAG.findall(rest))
            continue
        name, _, args = rest.partition(" ")
        if name == "image":
            sub, _, args = args.partition(" ")
            if "|" in sub:
                # The command table lists the subcommands in one line; their
                # flags come from the image command's own usage.
                for each in sub.split("|"):
                    commands.setdefault("image " + each, set())
                continue
            name = "image " + sub
        commands.setdefault(name, set()).update(FLAG.findall(args))
    return commands


def nido_page(page):
    """Returns {command: flags} from the command list of nido(1)."""
    commands = {}
    for item in list_items(page):
        if item.section != "DESCRIPTION":
            continue
        first = words_of(item.head)[1:2]
        if item.depth == 1 and first == ["Cm"]:
            name = " ".join(first_args(item.head, "Cm"))
            commands.setdefault(name, set()).update(macro_args(item.head, "Fl"))
        elif item.depth == 1 and first == ["Fl"]:
            words = macro_args(item.head, "Fl") + macro_args(item.head, "Cm")
            commands.setdefault("", set()).update(words)
        elif item.depth == 2 and words_of(item.parent)[1:2] == ["Cm"]:
            name = " ".join(first_args(item.parent, "Cm"))
            commands.setdefault(name, set()).update(macro_args(item.head, "Fl"))
    return commands


def nido_synopsis(page):
    """Returns {command: flags} from the SYNOPSIS of nido(1), one .Nm line each."""
    commands, name = {}, None
    for line in section_lines(page, "SYNOPSIS"):
        if line.startswith(".Nm"):
            name = None
        elif line.startswith(".Cm") and name is None:
            name = " ".join(macro_args(line, "Cm"))
            commands.setdefault(name, set())
        elif line.startswith(".Fl") and name is None:
            commands.setdefault("", set()).update(macro_args(line, "Fl"))
        elif name is not None:
            commands[name].update(macro_args(line, "Fl"))
    return commands


def check_nido(page, usage_path, extra_path, part):
    usage = nido_usage(usage_path)
    documented = nido_page(page) if part == "commands" else nido_synopsis(page)
    extra = known_extra(extra_path) if part == "commands" else {}
    good = compare(f"nido {part}: commands", set(usage) - {""}, set(documented) - {""})
    for name in sorted(set(usage) | {""}):
        accepted = usage.get(name, set()) | extra.get(name, set())
        label = f"nido {part}: {name or 'without a command'}"
        if accepted or documented.get(name):
            good = compare(label, accepted, documented.get(name, set())) and good
    return good


def check_config(page, defaults_path, part):
    text = open(defaults_path).read()
    keys = re.findall(r"^([a-z_]+) =", text, re.M)
    if part == "keys":
        documented = [first_args(item.head, "Cm")[0] for item in list_items(page)
                      if item.section == "CONFIGURATION" and item.depth == 1]
        return compare("configuration keys", keys, documented)
    # The display of the defaults is the output of `nido config` for an empty
    # state directory, line for line.
    inside, page_lines = False, []
    for line in section_lines(page, "CONFIGURATION"):
        if line.startswith(".Ss "):
            inside = line == ".Ss The defaults"
        elif inside and line.startswith(".Bd"):
            page_lines = []
        elif inside and line.startswith(".Ed"):
            break
        elif inside:
            page_lines.append(line.rstrip())
    expected = [line.rstrip() for line in text.splitlines()]
    if page_lines == expected:
        return True
    print("# defaults in the page differ from `nido config`:", file=sys.stderr)
    for shown, wanted in zip(page_lines + [""] * len(expected), expected + [""] * len(page_lines)):
        if shown != wanted:
            print(f"#   page: {shown!r}  nido config: {wanted!r}", file=sys.stderr)
    return False


def check_catalog(page, source):
    """Compares the members that the catalog parser reads with nidofs(5)."""
    code = open(source).read()
    members = set(re.findall(r'\{ "([a-z_]+)", &(?:v|img)->', code))
    members |= set(re.findall(r'(?:dup_list|dup_member)\((?:obj|root), "([a-z_]+)"', code))
    members |= set(re.findall(r'GetObjectItemCaseSensitive\((?:obj|root), "([a-z_]+)"\)', code))
    documented = [name for item in list_items(page) if item.section == "CATALOG" and item.depth == 1
                  for name in macro_args(item.head, "Cm")]
    return compare("catalog members", members, documented)


if __name__ == "__main__":
    checks = {"nidofs": check_nidofs, "nido": check_nido, "config": check_config,
              "catalog": check_catalog}
    sys.exit(0 if checks[sys.argv[1]](*sys.argv[2:]) else 1)
PY

doccheck() {
	python3 "$T_DIR/doccheck.py" "$@"
}

check "nidofs options" doccheck nidofs "$MAN/nidofs.1" "$T_DIR/nidofs.usage" options
check "nidofs -o options" doccheck nidofs "$MAN/nidofs.1" "$T_DIR/nidofs.usage" suboptions
check "nidofs synopsis" doccheck nidofs "$MAN/nidofs.1" "$T_DIR/nidofs.usage" synopsis
check "nido commands and flags" doccheck nido "$MAN/nido.1" "$T_DIR/nido.usage" "$T_DIR/known-extra" commands
check "nido synopsis" doccheck nido "$MAN/nido.1" "$T_DIR/nido.usage" "$T_DIR/known-extra" synopsis
check "configuration keys" doccheck config "$MAN/nidofs.5" "$T_DIR/config.defaults" keys
check "configuration defaults" doccheck config "$MAN/nidofs.5" "$T_DIR/config.defaults" defaults
check "catalog members" doccheck catalog "$MAN/nidofs.5" "$T_ROOT/fetch/catalog.c"

t_done
