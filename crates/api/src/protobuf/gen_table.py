#!/usr/bin/env python3
"""Generates table.txt, the protobuf field table used by ../protobuf.rs.

Reads the Go type definitions (struct tags) of k8s.io/api, k8s.io/apimachinery and
k8s.io/apiextensions-apiserver straight out of their git mirrors at one release tag and
writes, for every struct, its fields in Go declaration order (= Go JSON order):

    M <pkg>.<Struct>
    F <field number> <json name> <flags> <type>
    K <apiVersion> <Kind> <pkg>.<Struct>        (top-level kinds: structs embedding TypeMeta)

flags: any of `o` (omitempty), `p` (Go pointer), `i` (embedded inline), or `-`.
type:  string bool int32 int64 uint32 uint64 float32 float64 bytes
       []T (repeated) | map[K]V | ~T (a named slice wrapped in a message: field 1 = items)
       @Time @MicroTime @Duration @Quantity @IntOrString @RawExtension @FieldsV1
       @JSON @PropsOrArray @PropsOrBool @PropsOrStringArray (special encodings)
       <pkg>.<Struct> (a nested message)

The wire type is derived from the Go type, not from the tag's wire type: some hand-written
tags (apiextensions JSONSchemaProps) say `bytes` for bools and doubles.

Usage: gen_table.py <api mirror> <apimachinery mirror> <apiextensions mirror> <tag> > table.txt
"""

import re
import subprocess
import sys

API_VERSIONS = [
    "core/v1", "apps/v1", "autoscaling/v1", "autoscaling/v2", "batch/v1", "certificates/v1",
    "coordination/v1", "discovery/v1", "events/v1", "networking/v1", "policy/v1", "rbac/v1",
    "scheduling/v1", "storage/v1", "authentication/v1", "authorization/v1",
]

SCALARS = {
    "string": "string", "bool": "bool", "int32": "int32", "int64": "int64", "int": "int64",
    "uint32": "uint32", "uint64": "uint64", "float64": "float64", "float32": "float32",
}

SPECIAL = {
    "meta/v1.Time": "@Time",
    "meta/v1.MicroTime": "@MicroTime",
    "meta/v1.Duration": "@Duration",
    "meta/v1.FieldsV1": "@FieldsV1",
    "resource.Quantity": "@Quantity",
    "intstr.IntOrString": "@IntOrString",
    "runtime.RawExtension": "@RawExtension",
    "apiextensions/v1.JSON": "@JSON",
    "apiextensions/v1.JSONSchemaPropsOrArray": "@PropsOrArray",
    "apiextensions/v1.JSONSchemaPropsOrBool": "@PropsOrBool",
    "apiextensions/v1.JSONSchemaPropsOrStringArray": "@PropsOrStringArray",
}

IMPORT_KEYS = [
    (r"^k8s\.io/api/(\w+/v\w+)$", r"\1"),
    (r"^k8s\.io/apimachinery/pkg/apis/meta/v1$", "meta/v1"),
    (r"^k8s\.io/apimachinery/pkg/api/resource$", "resource"),
    (r"^k8s\.io/apimachinery/pkg/util/intstr$", "intstr"),
    (r"^k8s\.io/apimachinery/pkg/runtime$", "runtime"),
    (r"^k8s\.io/apimachinery/pkg/types$", "types"),
    (r"^k8s\.io/apiextensions-apiserver/pkg/apis/apiextensions/v1$", "apiextensions/v1"),
]


def git_show(repo, tag, path):
    return subprocess.run(["git", "-C", repo, "show", f"{tag}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def git_ls(repo, tag, folder):
    out = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", f"{tag}:{folder}"],
                         check=True, capture_output=True, text=True).stdout
    return [folder + "/" + f for f in out.split() if f.endswith(".go")
            and not f.endswith("_test.go") and "generated" not in f and not f.startswith("zz_")]


def import_key(path):
    for pattern, repl in IMPORT_KEYS:
        if re.match(pattern, path):
            return re.sub(pattern, repl, path)
    return None


class Package:
    def __init__(self, key):
        self.key = key
        self.group = None
        self.structs = {}   # name -> list of (go name|None, go type, tag string), in order
        self.aliases = {}   # name -> go type
        self.imports = {}   # struct name -> {alias: package key} of its file


def strip_comment(line):
    # Go struct fields carry no `//` inside backquoted tags in these files.
    in_tag = False
    for i, ch in enumerate(line):
        if ch == "`":
            in_tag = not in_tag
        elif ch == "/" and not in_tag and line[i:i + 2] == "//":
            return line[:i]
    return line


def parse_file(pkg, text):
    # Block comments (license headers, commented-out fields) start a line in these files.
    text = re.sub(r"^\s*/\*.*?\*/", "", text, flags=re.S | re.M)
    imports = {}
    for m in re.finditer(r'^\s*(\w+\s+)?"([^"]+)"\s*$', text, re.M):
        key = import_key(m.group(2))
        if key:
            alias = (m.group(1) or "").strip() or m.group(2).rsplit("/", 1)[1]
            imports[alias] = key
    m = re.search(r'^const GroupName = "([^"]*)"', text, re.M)
    if m:
        pkg.group = m.group(1)
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^type (\w+) struct\s*\{\}", line)
        if m:
            pkg.structs[m.group(1)] = []
            pkg.imports[m.group(1)] = imports
            i += 1
            continue
        m = re.match(r"^type (\w+) struct \{\s*$", line)
        if m:
            name, fields = m.group(1), []
            i += 1
            while not lines[i].startswith("}"):
                field = strip_comment(lines[i]).strip()
                i += 1
                if not field:
                    continue
                fm = re.match(r"^(\w+)\s+([^`\s]+)\s*(`.*`)?$", field)
                em = re.match(r"^([\w.*]+)\s*(`.*`)?$", field)
                if fm:
                    fields.append((fm.group(1), fm.group(2), fm.group(3) or ""))
                elif em:
                    fields.append((None, em.group(1), em.group(2) or ""))
                else:
                    raise SystemExit(f"cannot parse field in {pkg.key}.{name}: {field!r}")
            pkg.structs[name] = fields
            pkg.imports[name] = imports
        else:
            m = re.match(r"^type (\w+) (?:= )?([^\s{]+)\s*(//.*)?$", line)
            if m:
                pkg.aliases[m.group(1)] = (m.group(2), imports)
        i += 1


def tag_value(tag, key):
    m = re.search(key + r':"([^"]*)"', tag)
    return m.group(1) if m else None


class Generator:
    def __init__(self, packages):
        self.packages = packages
        self.wanted = []
        self.seen = set()

    def qualify(self, pkg, imports, name):
        if "." in name:
            alias, rest = name.split(".", 1)
            if alias not in imports:
                raise SystemExit(f"unknown import {alias} in {pkg.key}")
            return imports[alias], rest
        return pkg.key, name

    def resolve(self, pkg, imports, gotype, map_value=False):
        """Returns the table type of a Go type (without the pointer)."""
        if gotype == "[]byte":
            return "bytes"
        if gotype.startswith("[]"):
            return "[]" + self.resolve(pkg, imports, gotype[2:])
        if gotype.startswith("map["):
            key, value = re.match(r"^map\[([^\]]+)\](.+)$", gotype).groups()
            return f"map[{self.resolve(pkg, imports, key)}]" + \
                self.resolve(pkg, imports, value, map_value=True)
        if gotype.startswith("*"):
            return self.resolve(pkg, imports, gotype[1:])
        if gotype in SCALARS:
            return SCALARS[gotype]
        key, name = self.qualify(pkg, imports, gotype)
        full = f"{key}.{name}"
        if full in SPECIAL:
            return SPECIAL[full]
        target = self.packages.get(key)
        if target is None:
            raise SystemExit(f"type {full} from an unparsed package")
        if name in target.structs:
            if full not in self.seen:
                self.seen.add(full)
                self.wanted.append(full)
            return full
        if name in target.aliases:
            under, under_imports = target.aliases[name]
            resolved = self.resolve(target, under_imports, under)
            # go-to-protobuf wraps a named slice used as a map value in a message
            # `{ repeated T items = 1; }` (authentication/v1 ExtraValue).
            if map_value and resolved.startswith("[]"):
                return "~" + resolved[2:]
            return resolved
        raise SystemExit(f"unknown type {full}")

    def struct_lines(self, full):
        key, name = full.split(".", 1)
        pkg = self.packages[key]
        imports = pkg.imports[name]
        out = [f"M {full}"]
        for goname, gotype, tag in pkg.structs[name]:
            proto = tag_value(tag, "protobuf")
            if proto is None:
                continue  # TypeMeta and other fields absent from the protobuf encoding
            number = proto.split(",")[1]
            json = tag_value(tag, "json")
            json_name, *options = (json if json is not None else "").split(",")
            if json_name == "-":
                continue
            flags = ""
            if "omitempty" in options:
                flags += "o"
            if gotype.startswith("*"):
                flags += "p"
            # Go's encoding/json flattens an embedded struct only when its tag gives no name
            # (`json:",inline"`); `metav1.ObjectMeta `json:"metadata"`` stays a named field.
            if goname is None and json_name == "":
                flags += "i"
                json_name = "_"
            elif json_name == "":
                json_name = goname
            table_type = self.resolve(pkg, imports, gotype)
            out.append(f"F {number} {json_name} {flags or '-'} {table_type}")
        return out

    def kinds(self):
        out = []
        for key, pkg in self.packages.items():
            if pkg.group is None:
                continue
            version = key.rsplit("/", 1)[1]
            api_version = f"{pkg.group}/{version}" if pkg.group else version
            for name, fields in pkg.structs.items():
                embeds_type_meta = any(g is None and t in ("metav1.TypeMeta", "TypeMeta") for g, t, _ in fields)
                if embeds_type_meta:
                    out.append((api_version, name, f"{key}.{name}"))
        return out


def main():
    api, machinery, extensions, tag = sys.argv[1:5]
    packages = {}
    sources = [(api, v, v) for v in API_VERSIONS] + [
        (machinery, "pkg/apis/meta/v1", "meta/v1"),
        (machinery, "pkg/types", "types"),
        (extensions, "pkg/apis/apiextensions/v1", "apiextensions/v1"),
    ]
    for repo, folder, key in sources:
        pkg = Package(key)
        for path in git_ls(repo, tag, folder):
            parse_file(pkg, git_show(repo, tag, path))
        packages[key] = pkg
    gen = Generator(packages)
    kinds = gen.kinds()
    for _, _, full in kinds:
        if full not in gen.seen:
            gen.seen.add(full)
            gen.wanted.append(full)
    print(f"# generated by gen_table.py from kubernetes/api, apimachinery and "
          f"apiextensions-apiserver {tag}; do not edit")
    for api_version, kind, full in kinds:
        print(f"K {api_version} {kind} {full}")
    i = 0
    while i < len(gen.wanted):
        for line in gen.struct_lines(gen.wanted[i]):
            print(line)
        i += 1


if __name__ == "__main__":
    main()
