# Prints values from a JSON document; the test image's agent reads metadata with it.
#
#   awk -v want=PATH -f jsonget.awk FILE
#
# PATH names a value by its keys (and array indexes) joined with "/":
# "uuid", "meta/role", "keys/0/data". A PATH ending in "/" selects every
# string, number or boolean directly inside that object or array, in order.
# Each selected value is printed with its escapes decoded, then a newline;
# null, objects and arrays print nothing. Invalid JSON prints nothing and
# exits with status 2. Written for POSIX awk, busybox awk included; run it
# with LC_ALL=C so \u escapes come out as UTF-8 bytes.

BEGIN {
    hex = "0123456789abcdef"
    failed = 0
}

{ doc = doc $0 "\n" }

END {
    selected_values = ""
    n = length(doc)
    pos = 1
    parse_value("")
    skip_space()
    if (!failed && pos <= n) fail()
    if (failed) exit 2
    printf "%s", selected_values
}

function fail() {
    failed = 1
    pos = n + 1
}

function skip_space(   c) {
    while (pos <= n) {
        c = substr(doc, pos, 1)
        if (c != " " && c != "\t" && c != "\n" && c != "\r") break
        pos++
    }
}

function selected(path,   rest) {
    if (path == want) return 1
    if (substr(want, length(want)) != "/") return 0
    if (substr(path, 1, length(want)) != want) return 0
    rest = substr(path, length(want) + 1)
    return rest != "" && index(rest, "/") == 0
}

function emit(path, value) {
    if (!failed && selected(path)) selected_values = selected_values value "\n"
}

function parse_value(path,   c, token) {
    skip_space()
    c = substr(doc, pos, 1)
    if (c == "{") parse_object(path)
    else if (c == "[") parse_array(path)
    else if (c == "\"") emit(path, parse_string())
    else if (match(substr(doc, pos), /^(-?[0-9][0-9.eE+-]*|true|false|null)/)) {
        token = substr(doc, pos, RLENGTH)
        pos += RLENGTH
        if (token != "null") emit(path, token)
    }
    else fail()
}

function parse_object(path,   key, c) {
    pos++
    skip_space()
    if (substr(doc, pos, 1) == "}") { pos++; return }
    while (!failed) {
        skip_space()
        if (substr(doc, pos, 1) != "\"") { fail(); return }
        key = parse_string()
        skip_space()
        if (substr(doc, pos, 1) != ":") { fail(); return }
        pos++
        parse_value(path == "" ? key : path "/" key)
        skip_space()
        c = substr(doc, pos, 1)
        pos++
        if (c == "}") return
        if (c != ",") { fail(); return }
    }
}

function parse_array(path,   index_, c) {
    pos++
    skip_space()
    if (substr(doc, pos, 1) == "]") { pos++; return }
    index_ = 0
    while (!failed) {
        parse_value(path == "" ? index_ : path "/" index_)
        index_++
        skip_space()
        c = substr(doc, pos, 1)
        pos++
        if (c == "]") return
        if (c != ",") { fail(); return }
    }
}

# Reads the string starting at pos (on its opening quote) and decodes it.
function parse_string(   out, c, code, low) {
    pos++
    out = ""
    while (pos <= n) {
        # Copy the run of plain characters up to the next quote or backslash.
        if (match(substr(doc, pos), /["\\]/) == 0) break
        out = out substr(doc, pos, RSTART - 1)
        pos += RSTART - 1
        c = substr(doc, pos, 1)
        pos++
        if (c == "\"") return out
        c = substr(doc, pos, 1)
        pos++
        if (c == "n") out = out "\n"
        else if (c == "t") out = out "\t"
        else if (c == "r") out = out "\r"
        else if (c == "b") out = out "\b"
        else if (c == "f") out = out "\f"
        else if (c == "u") {
            code = hex4(substr(doc, pos, 4))
            pos += 4
            if (code >= 55296 && code < 56320 && substr(doc, pos, 2) == "\\u") {
                low = hex4(substr(doc, pos + 2, 4))
                if (low >= 56320 && low < 57344) {
                    pos += 6
                    code = 65536 + (code - 55296) * 1024 + (low - 56320)
                }
            }
            out = out utf8(code)
        }
        else out = out c
    }
    fail()
    return ""
}

function hex4(digits,   i, d, value) {
    value = 0
    for (i = 1; i <= 4; i++) {
        d = index(hex, tolower(substr(digits, i, 1)))
        if (d == 0) { fail(); return 0 }
        value = value * 16 + d - 1
    }
    return value
}

function utf8(code) {
    if (code < 128) return sprintf("%c", code)
    if (code < 2048)
        return sprintf("%c%c", 192 + int(code / 64), 128 + code % 64)
    if (code < 65536)
        return sprintf("%c%c%c", 224 + int(code / 4096), 128 + int(code / 64) % 64,
                       128 + code % 64)
    return sprintf("%c%c%c%c", 240 + int(code / 262144), 128 + int(code / 4096) % 64,
                   128 + int(code / 64) % 64, 128 + code % 64)
}
