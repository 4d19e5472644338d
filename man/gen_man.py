#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes libqsbr's man pages from the documents they must not drift from.

  docs/api.md      the text: each "### `prototype`" section becomes the
                   DESCRIPTION of that call's page; consecutive headings share
                   a page (the others get ".so" pages); the top of the file and
                   the sections with no calls (Misuse, ABI) go into qsbr(3).
  include/qsbr.h   the SYNOPSIS: the exact prototypes.
  man/names.txt    the one-line NAME description of each page.

Usage: gen_man.py --api A --header H [--header H2 ...] --names N
                  [--overview NAME] --version V --outdir D PAGE...
PAGE are the file names meson expects (qsbr.3, qsbr_register.3, ...); the
script fails when they differ from what docs/api.md documents, so a call
added to the docs without a page (or the reverse) breaks the build.

The data structures' pages come from a second run: --api docs/ds.md, one
--header per include/qsbr/*.h, --names man/names-ds.txt and --overview
qsbr_ds, which names the overview page (qsbr(3) by default).  A page's
SYNOPSIS includes the header that declares its call.

Only the Markdown that docs/api.md uses is understood: paragraphs, "- "
lists, pipe tables, `code`, **bold**, *italic*,
[links](url), and <!-- comments -->, which are dropped.  Anything else is
passed through escaped; the man lint test (check_man.sh) shows how it
renders.
"""

import argparse
import os
import re
import sys

SECTION = "3"
CALL_RE = re.compile(r"\b(qsbr_\w+)\s*\(")


def fail(msg):
    sys.exit("gen_man.py: " + msg)


# ---- Inputs ------------------------------------------------------------------


def parse_api(text):
    """Returns (intro lines, chapters).  A chapter is (title, body lines,
    entries); an entry is (names, body lines) for one or more headings."""
    intro, chapters = [], []
    entry = None
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    for line in text.splitlines():
        if line.startswith("# "):
            continue
        if line.startswith("## "):
            chapters.append((line[3:].strip(), [], []))
            entry = None
        elif line.startswith("### "):
            names = CALL_RE.findall(line)
            if len(names) != 1:
                fail("cannot find the call in heading %r" % line)
            if entry is not None and not any(l.strip() for l in entry[1]):
                entry[0].append(names[0])  # a second heading, same page
            else:
                entry = ([names[0]], [])
                chapters[-1][2].append(entry)
        elif entry is not None:
            entry[1].append(line)
        elif chapters:
            chapters[-1][1].append(line)
        else:
            intro.append(line)
    return intro, chapters


def parse_header(text):
    """Returns {name: prototype} for every QSBR_API declaration and every
    static inline qsbr_ function, whitespace normalised."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    body = re.sub(r"/\*.*?\*/", " ", body, flags=re.S)
    protos = {}
    for m in re.finditer(r"QSBR_API\s+([^;{}]*?\)\s*);", body, flags=re.S):
        protos[CALL_RE.search(m.group(1)).group(1)] = m.group(1)
    for m in re.finditer(r"(static\s+inline\s+[^;{}]*?\))\s*\{", body, flags=re.S):
        protos[CALL_RE.search(m.group(1)).group(1)] = m.group(1)
    for name, p in protos.items():
        p = re.sub(r"\s+", " ", p).strip()
        protos[name] = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", p))
    return protos


def parse_names(text):
    names = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, what = line.strip().partition(" ")
            if not what.strip():
                fail("names.txt: no description for %s" % name)
            names[name] = what.strip()
    return names


# ---- Markdown to man(7) --------------------------------------------------------


def esc(s):
    """Escapes plain text for roff (not at the start of a line: see line())."""
    return s.replace("\\", "\\e")


def code(s):
    return esc(s).replace("-", "\\-")


def line(s):
    """A text line: one that would start with a control character is
    protected."""
    return "\\&" + s if s[:1] in (".", "'") else s


class Inline:
    """Converts inline Markdown of one page; knows the pages to link to."""

    def __init__(self, pages, self_names=(), params=(), overview_name="qsbr"):
        self.pages = pages
        self.overview_name = overview_name
        self.self_names = set(self_names)
        self.params = set(params)
        self.refs = set()

    def __call__(self, text):
        out = []
        for i, part in enumerate(re.split(r"`([^`]*)`", text)):
            if i % 2:
                out.append(self.code_span(part))
            else:
                out.append(self.prose(part))
        return "".join(out)

    def code_span(self, s):
        # \% : never hyphenate an identifier.
        if s in self.params:
            return "\\fI\\%%%s\\fP" % code(s)
        if s in self.pages and s != self.overview_name and s not in self.self_names:
            self.refs.add(s)
            return "\\fB\\%%%s\\fP(%s)" % (code(s), SECTION)
        return "\\fB\\%%%s\\fP" % code(s)

    def prose(self, s):
        s = esc(s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", s)
        s = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"\\fB\1\\fP", s)
        s = re.sub(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])", r"\\fI\1\\fP", s)
        return s


def blocks(lines):
    """Splits Markdown lines into ('p', lines), ('ul', items), ('table', rows)."""
    out, cur = [], None
    for raw in lines:
        s = raw.rstrip()
        if not s.strip():
            cur = None
            continue
        if s.startswith("|"):
            cells = [c.strip() for c in s.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue
            if cur is None or cur[0] != "table":
                cur = ("table", [])
                out.append(cur)
            cur[1].append(cells)
        elif re.match(r"[-*] ", s):
            if cur is None or cur[0] != "ul":
                cur = ("ul", [])
                out.append(cur)
            cur[1].append([s[2:].strip()])
        elif cur is not None and cur[0] == "ul" and raw.startswith("  "):
            cur[1][-1].append(s.strip())
        elif cur is not None and cur[0] == "p":
            cur[1].append(s.strip())
        else:
            cur = ("p", [s.strip()])
            out.append(cur)
    return out


def render(lines, inline):
    """Markdown body to roff lines, paragraphs separated by .PP."""
    out = []
    for kind, content in blocks(lines):
        # A paragraph or item becomes one text line, so that a code span
        # may continue on the next source line.
        if kind == "p":
            out += [".PP", line(inline(" ".join(content)))]
        elif kind == "ul":
            for item in content:
                out += [".IP \\(bu 2", line(inline(" ".join(item)))]
        else:
            out += table(content, inline)
    return out


def table(rows, inline):
    """A pipe table as tbl(1) input: the first row is the header; the last
    column fills the line and wraps."""
    ncol = len(rows[0])
    out = [".PP", ".TS", " ".join(["lb"] * ncol),
           " ".join(["l"] * (ncol - 1) + ["lx"]) + "."]
    for r, cells in enumerate(rows):
        if len(cells) != ncol:
            fail("table row with %d cells, header has %d" % (len(cells), ncol))
        conv = [inline(c) for c in cells]
        if r == 0:
            out.append("\t".join(conv))
            continue
        out.append("\t".join(conv[:-1] + ["T{"]))
        out.append(line(conv[-1]))
        out.append("T}")
    out.append(".TE")
    return out


# ---- Pages -----------------------------------------------------------------------


def synopsis(proto):
    """A prototype as .BI lines: types bold, parameter names italic; long
    ones wrapped after a comma, aligned under the first parameter."""
    m = re.fullmatch(r"(.*?\bqsbr_\w+)\((.*)\)", proto)
    head, params = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in params:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur.strip())

    def segs(p):  # [(text, italic)]
        if p == "void":
            return [(p, False)]
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)", p) or re.search(r"(\w+)\s*$", p)
        return [(p[:m.start(1)], False), (m.group(1), True), (p[m.end(1):], False)]

    if head.startswith("static inline "):
        head = head[len("static inline "):]
    lines, cur = [], [(head + "(", False)]
    width = len(head) + 1
    indent = " " * width
    for i, p in enumerate(parts):
        sep = "," if i < len(parts) - 1 else ");"
        if i > 0 and width + 1 + len(p) + len(sep) > 66:
            lines.append(cur)
            cur, width = [(indent, False)], len(indent)
        elif i > 0:
            cur.append((" ", False))
            width += 1
        cur += segs(p) + [(sep, False)]
        width += len(p) + len(sep)
    lines.append(cur)

    out = []
    for segments in lines:
        merged = []
        for text, it in segments:
            if merged and merged[-1][1] == it:
                merged[-1] = (merged[-1][0] + text, it)
            elif text:
                merged.append((text, it))
        if merged[0][1]:
            merged.insert(0, ("", False))
        out.append(".BI " + " ".join('"%s"' % code(t) for t, _ in merged))
    return out


def th(name, version):
    """The title line, then left-aligned text: justifying lines full of long
    identifiers leaves wide gaps."""
    return ('.TH %s %s "" "libqsbr %s" "libqsbr Manual"\n.ad l'
            % (name.upper(), SECTION, version))


def param_names(proto):
    """The parameter names of a prototype, for italics in the text."""
    inner = proto[proto.index("(") + 1:-1]
    names = set(re.findall(r"\(\s*\*\s*(\w+)\s*\)", inner))
    inner = re.sub(r"\(\s*\*\s*\w+\s*\)\s*\([^)]*\)", "", inner)
    names |= set(re.findall(r"(\w+)\s*(?:,|$)", inner)) - {"void"}
    return names


def include_name(path):
    """How a program includes the header at path: its path below include/."""
    parts = os.path.normpath(path).split(os.sep)
    return "/".join(parts[len(parts) - parts[::-1].index("include"):]) \
        if "include" in parts else os.path.basename(path)


def call_page(names, body, protos, summaries, pages, version, include="qsbr.h",
              overview_name="qsbr"):
    inline = Inline(pages, names, set().union(*(param_names(protos[n]) for n in names)),
                    overview_name)
    desc = render(body, inline)
    out = ["'\\\" t" if any(k == "table" for k, _ in blocks(body)) else None,
           th(names[0], version),
           ".SH NAME",
           "%s \\- %s" % (", ".join(code(n) for n in names), esc(summaries[names[0]])),
           ".SH LIBRARY",
           "libqsbr (\\fI\\-lqsbr \\-pthread\\fP, pkg-config \\fIqsbr\\fP)",
           ".SH SYNOPSIS",
           ".nf",
           ".B #include <%s>" % include,
           ".PP"]
    out = [l for l in out if l is not None]
    for i, n in enumerate(names):
        out += ([".PP"] if i else []) + synopsis(protos[n])
    out += [".fi", ".SH DESCRIPTION"] + desc
    if protos[names[0]].startswith("static inline"):
        out += [".SH NOTES",
                "The call is an inline function in \\fB<qsbr.h>\\fP; "
                "only its slow path is in the library."]
    see = sorted(inline.refs)
    if overview_name != "qsbr":
        see = [overview_name] + see
    out += [".SH SEE ALSO", ".BR qsbr (%s)%s" % (SECTION, "," if see else "")]
    for i, r in enumerate(see):
        out.append(".BR %s (%s)%s" % (code(r), SECTION, "," if i < len(see) - 1 else ""))
    return out


def overview(intro, chapters, summaries, pages, version, name="qsbr", includes=("qsbr.h",),
             doc="docs/api.md"):
    if name != "qsbr":
        return overview_other(intro, chapters, summaries, pages, version, name, includes, doc)
    inline = Inline(pages)
    out = [th("qsbr", version),
           ".SH NAME",
           "qsbr \\- %s" % esc(summaries["qsbr"]),
           ".SH LIBRARY",
           "libqsbr (\\fI\\-lqsbr \\-pthread\\fP, pkg-config \\fIqsbr\\fP)",
           ".SH SYNOPSIS",
           ".nf",
           ".B #include <qsbr.h>",
           ".fi",
           ".SH DESCRIPTION",
           ".PP",
           "A thread that unlinks an object from a shared lock-free structure",
           "retires it instead of freeing it.",
           "The object's callback runs once every online thread of the domain",
           "has reported a quiescent state, a point where it holds no reference",
           "into the structure.",
           "Each thread registers with the domain and reports quiescent states;",
           "reading the structure itself needs no barrier."]
    out += render(intro, inline)
    out.append(".SH CALLS")
    for title, body, entries in chapters:
        if not entries:
            continue
        out.append(".SS %s" % esc(title))
        for names, _ in entries:
            for n in names:
                out += [".TP", ".BR %s (%s)" % (code(n), SECTION), esc(summaries[n])]
    for title, body, entries in chapters:
        if not entries:
            out.append(".SH %s" % esc(title.upper()))
            out += render(body, inline)
    out += [".SH SEE ALSO",
            ".BR qsbr_ds (%s)" % SECTION,
            "(the lock-free stack, queue, ordered set and hash map built on these calls).",
            "In the libqsbr sources:",
            "\\fIdocs/api.md\\fP (the text of these pages),",
            "\\fIdocs/design.md\\fP (why it is safe: the memory-ordering argument),",
            "\\fIdocs/abi.md\\fP (what is ABI, the versioning policy)",
            "and \\fIexamples/\\fP (programs to start from)."]
    return out


def overview_other(intro, chapters, summaries, pages, version, name, includes, doc):
    """The overview page of a second document (docs/ds.md): its top and
    its sections with no calls, and the calls by chapter."""
    inline = Inline(pages, overview_name=name)
    out = [th(name, version),
           ".SH NAME",
           "%s \\- %s" % (code(name), esc(summaries[name])),
           ".SH LIBRARY",
           "libqsbr (\\fI\\-lqsbr \\-pthread\\fP, pkg-config \\fIqsbr\\fP)",
           ".SH SYNOPSIS",
           ".nf"]
    out += [".B #include <%s>" % inc for inc in includes]
    out += [".fi", ".SH DESCRIPTION"]
    out += render(intro, inline)
    out.append(".SH CALLS")
    for title, body, entries in chapters:
        if not entries:
            continue
        out.append(".SS %s" % esc(title))
        for names, _ in entries:
            for n in names:
                out += [".TP", ".BR %s (%s)" % (code(n), SECTION), esc(summaries[n])]
    for title, body, entries in chapters:
        if not entries:
            out.append(".SH %s" % esc(title.upper()))
            out += render(body, inline)
    out += [".SH SEE ALSO",
            ".BR qsbr (%s)." % SECTION,
            "In the libqsbr sources:",
            "\\fI%s\\fP (the text of these pages)" % doc,
            "and \\fIlib/ds/\\fP (the algorithms, with their memory-ordering rules)."]
    return out


def main():
    ap = argparse.ArgumentParser()
    for opt in ("api", "names", "version", "outdir"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--header", required=True, action="append")
    ap.add_argument("--overview", default="qsbr")
    ap.add_argument("pages", nargs="+")
    a = ap.parse_args()
    with open(a.api, encoding="utf-8") as f:
        intro, chapters = parse_api(f.read())
    protos, includes = {}, {}
    for path in a.header:
        with open(path, encoding="utf-8") as f:
            found = parse_header(f.read())
        protos.update(found)
        includes.update((n, include_name(path)) for n in found)
    with open(a.names, encoding="utf-8") as f:
        summaries = parse_names(f.read())

    groups = [names for _, _, entries in chapters for names, _ in entries]
    documented = {n for g in groups for n in g}
    ov = a.overview
    pages = documented | {ov}
    files = {ov: None}
    for g in groups:
        for n in g:
            files[n] = g[0] if n != g[0] else None

    doc = "docs/" + os.path.basename(a.api)
    hdrs = " or ".join(sorted(set(includes.values()))) or os.path.basename(a.header[0])
    names_file = "man/" + os.path.basename(a.names)
    want = {os.path.basename(p) for p in a.pages}
    have = {n + "." + SECTION for n in files}
    if want != have:
        fail("meson's page list and %s differ: only in man/meson.build: %s; "
             "only in %s: %s" % (doc, sorted(want - have) or "-", doc,
                                 sorted(have - want) or "-"))
    missing = documented - set(protos)
    if missing:
        fail("documented in %s but not declared in %s: %s" % (doc, hdrs, sorted(missing)))
    undocumented = {n for n in protos if n.startswith("qsbr_") and not n.startswith("qsbr__")
                    and n not in documented and not protos[n].startswith("static inline")}
    if undocumented:
        fail("declared in %s but not documented in %s: %s" % (hdrs, doc, sorted(undocumented)))
    if set(summaries) != pages:
        fail("%s and %s differ: only in %s: %s; only in %s: %s"
             % (names_file, doc, names_file, sorted(set(summaries) - pages) or "-",
                doc, sorted(pages - set(summaries)) or "-"))

    used = sorted({includes[n] for n in documented}, key=lambda i: (i != "qsbr.h", i))
    out = {ov: overview(intro, chapters, summaries, pages, a.version, ov, used, doc)}
    for _, _, entries in chapters:
        for names, body in entries:
            out[names[0]] = call_page(names, body, protos, summaries, pages, a.version,
                                      includes[names[0]], ov)
    for n, target in files.items():
        text = (".so man%s/%s.%s\n" % (SECTION, target, SECTION) if target else
                "\n".join(out[n]) + "\n")
        path = os.path.join(a.outdir, n + "." + SECTION)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
