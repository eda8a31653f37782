/* One chain entry's columns in one call: the exact type check, the canonical JSON of the personal and the
 * content arrays (streamed into SHA-256 contexts on the stack, never built whole), the three digests and
 * their hexes. The same bytes as model/chain.py (spec/audit.md, xc-chain-1); whatever it does not handle
 * returns None and the caller takes the interpreted path (store/chain.py). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, whose context is allocated per
 * digest: the very cost this module avoids. They stay supported (and use SHA-NI where the CPU has it). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <stdint.h>
#include <string.h>

#define CHUNK 512
#define LAYOUT_PERSONAL 255 /* a content layout's index of the personal digest */

typedef struct {
    SHA256_CTX ctx;
    size_t used;
    unsigned char buf[CHUNK];
} Stream;

static void
stream_flush(Stream *s)
{
    if (s->used) {
        SHA256_Update(&s->ctx, s->buf, s->used);
        s->used = 0;
    }
}

static inline void
stream_reserve(Stream *s, size_t n)
{
    if (s->used + n > CHUNK) {
        stream_flush(s);
    }
}

static inline void
stream_byte(Stream *s, unsigned char c)
{
    stream_reserve(s, 1);
    s->buf[s->used++] = c;
}

/* A few bytes (a literal, an integer's digits): copied one by one, as a memcpy of a size the compiler
 * cannot know would be expanded into a slow string instruction or a library call. */
static inline void
stream_bytes(Stream *s, const char *data, size_t n)
{
    size_t i;
    stream_reserve(s, n);
    for (i = 0; i < n; i++) {
        s->buf[s->used + i] = (unsigned char)data[i];
    }
    s->used += n;
}

static const char HEX[] = "0123456789abcdef";

/* json's encode_basestring with ensure_ascii=False: " and \ escaped, \b \f \n \r \t short, the other
 * characters below 0x20 as \u00xx in lower case, everything else as raw UTF-8. */
static inline void
stream_escaped(Stream *s, Py_UCS4 c)
{
    unsigned char *out;
    stream_reserve(s, 6);
    out = s->buf + s->used;
    out[0] = '\\';
    switch (c) {
    case '"': out[1] = '"'; s->used += 2; return;
    case '\\': out[1] = '\\'; s->used += 2; return;
    case '\b': out[1] = 'b'; s->used += 2; return;
    case '\f': out[1] = 'f'; s->used += 2; return;
    case '\n': out[1] = 'n'; s->used += 2; return;
    case '\r': out[1] = 'r'; s->used += 2; return;
    case '\t': out[1] = 't'; s->used += 2; return;
    default:
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = (unsigned char)HEX[c >> 4];
        out[5] = (unsigned char)HEX[c & 15];
        s->used += 6;
    }
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether 8 ASCII bytes hold one that json escapes (below 0x20, " or \): no byte borrows unless one does. */
static inline int
ascii_special(uint64_t word)
{
    return (((word - ONES * 0x20) | ((word ^ (ONES * '"')) - ONES) | ((word ^ (ONES * '\\')) - ONES)) & HIGHS)
           != 0;
}

/* ASCII bytes, escaped as json escapes them. */
static void
stream_ascii(Stream *s, const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            stream_escaped(s, c);
        }
        else {
            stream_byte(s, c);
        }
    }
}

/* A str as a JSON string; 0 if it holds a lone surrogate (not UTF-8: json's bytes cannot be encoded) or is
 * a legacy string not yet in its compact form (which only deprecated C APIs make). */
static int
stream_str(Stream *s, PyObject *str)
{
    Py_ssize_t n, i;
    int kind;
    const void *data;

    if (!PyUnicode_IS_READY(str)) {
        return 0;
    }
    n = PyUnicode_GET_LENGTH(str);
    kind = PyUnicode_KIND(str);
    data = PyUnicode_DATA(str);
    stream_byte(s, '"');
    if (PyUnicode_IS_ASCII(str)) {
        const unsigned char *p = (const unsigned char *)data;
        for (i = 0; i + 8 <= n; i += 8) {
            uint64_t word;
            memcpy(&word, p + i, 8);
            if (ascii_special(word)) {
                stream_ascii(s, p + i, 8);
            }
            else {
                stream_reserve(s, 8);
                memcpy(s->buf + s->used, &word, 8);
                s->used += 8;
            }
        }
        stream_ascii(s, p + i, (size_t)(n - i));
    }
    else {
        for (i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            unsigned char *out;
            if (c < 0x80) {
                if (c < 0x20 || c == '"' || c == '\\') {
                    stream_escaped(s, c);
                }
                else {
                    stream_byte(s, (unsigned char)c);
                }
                continue;
            }
            stream_reserve(s, 4);
            out = s->buf + s->used;
            if (c < 0x800) {
                out[0] = (unsigned char)(0xC0 | (c >> 6));
                out[1] = (unsigned char)(0x80 | (c & 0x3F));
                s->used += 2;
            }
            else if (c < 0x10000) {
                if (c >= 0xD800 && c <= 0xDFFF) {
                    return 0;
                }
                out[0] = (unsigned char)(0xE0 | (c >> 12));
                out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                out[2] = (unsigned char)(0x80 | (c & 0x3F));
                s->used += 3;
            }
            else {
                out[0] = (unsigned char)(0xF0 | (c >> 18));
                out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
                out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                out[3] = (unsigned char)(0x80 | (c & 0x3F));
                s->used += 4;
            }
        }
    }
    stream_byte(s, '"');
    return 1;
}

/* One value as JSON; 0 if it is not an exact str, int within 64 bits, bool or None, or not encodable. */
static int
stream_value(Stream *s, PyObject *value)
{
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyUnicode_Type) {
        return stream_str(s, value);
    }
    if (value == Py_None) {
        stream_bytes(s, "null", 4);
        return 1;
    }
    if (type == &PyBool_Type) {
        if (value == Py_True) {
            stream_bytes(s, "true", 4);
        }
        else {
            stream_bytes(s, "false", 5);
        }
        return 1;
    }
    if (type == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        char digits[24];
        char *end = digits + sizeof(digits);
        char *p = end;
        unsigned long long u;
        if (overflow) {
            return 0;
        }
        u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0) {
            *--p = '-';
        }
        stream_bytes(s, p, (size_t)(end - p));
        return 1;
    }
    return 0;
}

static int
hex_value(Py_UCS4 c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* 64 hex digits as 32 bytes; 0 if the str is anything else. */
static int
unhex(PyObject *str, unsigned char out[SHA256_DIGEST_LENGTH])
{
    const unsigned char *p;
    int i;
    if (!PyUnicode_CheckExact(str) || !PyUnicode_IS_ASCII(str) || PyUnicode_GET_LENGTH(str) != 64) {
        return 0;
    }
    p = PyUnicode_1BYTE_DATA(str);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        int high = hex_value(p[2 * i]), low = hex_value(p[2 * i + 1]);
        if (high < 0 || low < 0) {
            return 0;
        }
        out[i] = (unsigned char)(high << 4 | low);
    }
    return 1;
}

static PyObject *
hexed(const unsigned char digest[SHA256_DIGEST_LENGTH])
{
    PyObject *str = PyUnicode_New(2 * SHA256_DIGEST_LENGTH, 127);
    Py_UCS1 *out;
    int i;
    if (str == NULL) {
        return NULL;
    }
    out = PyUnicode_1BYTE_DATA(str);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = (Py_UCS1)HEX[digest[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)HEX[digest[i] & 15];
    }
    return str;
}

/* The JSON array of the values a layout names (indexes into format, raw digest, previous id, the row's
 * values, then the personal digest) streamed into s; 0 if a value is not one the canonical form takes. */
static int
stream_array(Stream *s, const unsigned char *layout, Py_ssize_t size, PyObject *const *front,
             PyObject *const *row, Py_ssize_t row_size, PyObject *personal)
{
    Py_ssize_t i;
    stream_byte(s, '[');
    for (i = 0; i < size; i++) {
        unsigned char index = layout[i];
        PyObject *value;
        if (index < 3) {
            value = front[index];
        }
        else if (index == LAYOUT_PERSONAL && personal != NULL) {
            value = personal;
        }
        else if ((Py_ssize_t)index - 3 < row_size) {
            value = row[index - 3];
        }
        else {
            return 0;
        }
        if (i) {
            stream_byte(s, ',');
        }
        if (!stream_value(s, value)) {
            return 0;
        }
    }
    stream_byte(s, ']');
    stream_flush(s);
    return 1;
}

PyDoc_STRVAR(entry_doc,
"entry(format, personal_layout, content_layout, salt, salt_hex, prev_chain, row, raw_sha256,\n"
"      prev_event_id, /)\n"
"--\n\n"
"The chain columns (raw_sha256, salt_hex, personal_sha256, prev_event_id, entry_hash, chain_hash) of a\n"
"row tuple, or None when a value is not an exact str, 64-bit int, bool or None, a str is not UTF-8, the\n"
"row is not a tuple or the previous chain hash is not 64 hex digits.");

static PyObject *
entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *format, *personal_layout, *content_layout, *salt, *salt_hex, *prev_chain, *row;
    PyObject *front[3];
    PyObject *const *items;
    Py_ssize_t row_size;
    Stream s;
    unsigned char personal[SHA256_DIGEST_LENGTH], content[SHA256_DIGEST_LENGTH];
    unsigned char link[SHA256_DIGEST_LENGTH], chain[SHA256_DIGEST_LENGTH];
    PyObject *personal_hex, *result;

    (void)module;
    if (nargs != 9) {
        PyErr_Format(PyExc_TypeError, "entry() takes 9 arguments (%zd given)", nargs);
        return NULL;
    }
    format = args[0];
    personal_layout = args[1];
    content_layout = args[2];
    salt = args[3];
    salt_hex = args[4];
    prev_chain = args[5];
    row = args[6];
    if (!PyBytes_CheckExact(personal_layout) || !PyBytes_CheckExact(content_layout)
        || !PyBytes_CheckExact(salt)) {
        PyErr_SetString(PyExc_TypeError, "the layouts and the salt are bytes");
        return NULL;
    }
    if (!PyTuple_CheckExact(row)) {
        Py_RETURN_NONE;
    }
    items = ((PyTupleObject *)row)->ob_item;
    row_size = PyTuple_GET_SIZE(row);
    front[0] = format;
    front[1] = args[7];
    front[2] = args[8];
    if (!unhex(prev_chain, link)) {
        Py_RETURN_NONE;
    }

    SHA256_Init(&s.ctx);
    s.used = 0;
    SHA256_Update(&s.ctx, PyBytes_AS_STRING(salt), (size_t)PyBytes_GET_SIZE(salt));
    if (!stream_array(&s, (const unsigned char *)PyBytes_AS_STRING(personal_layout),
                      PyBytes_GET_SIZE(personal_layout), front, items, row_size, NULL)) {
        Py_RETURN_NONE;
    }
    SHA256_Final(personal, &s.ctx);
    personal_hex = hexed(personal);
    if (personal_hex == NULL) {
        return NULL;
    }

    SHA256_Init(&s.ctx);
    s.used = 0;
    if (!stream_array(&s, (const unsigned char *)PyBytes_AS_STRING(content_layout),
                      PyBytes_GET_SIZE(content_layout), front, items, row_size, personal_hex)) {
        Py_DECREF(personal_hex);
        Py_RETURN_NONE;
    }
    SHA256_Final(content, &s.ctx);

    /* Not OpenSSL 3's one-shot SHA256(): it fetches the algorithm (locks, a property query) every call. */
    SHA256_Init(&s.ctx);
    SHA256_Update(&s.ctx, link, SHA256_DIGEST_LENGTH);
    SHA256_Update(&s.ctx, content, SHA256_DIGEST_LENGTH);
    SHA256_Final(chain, &s.ctx);

    result = PyTuple_New(6);
    if (result == NULL) {
        Py_DECREF(personal_hex);
        return NULL;
    }
    Py_INCREF(front[1]);
    PyTuple_SET_ITEM(result, 0, front[1]);
    Py_INCREF(salt_hex);
    PyTuple_SET_ITEM(result, 1, salt_hex);
    PyTuple_SET_ITEM(result, 2, personal_hex);
    Py_INCREF(front[2]);
    PyTuple_SET_ITEM(result, 3, front[2]);
    PyTuple_SET_ITEM(result, 4, hexed(content));
    PyTuple_SET_ITEM(result, 5, hexed(chain));
    if (PyTuple_GET_ITEM(result, 4) == NULL || PyTuple_GET_ITEM(result, 5) == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"entry", (PyCFunction)(void (*)(void))entry, METH_FASTCALL, entry_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "xmpp_connect.store._chain_entry",
    .m_doc = "One chain entry's columns in compiled code (store/chain.py; the reference: model/chain.py).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__chain_entry(void)
{
    return PyModuleDef_Init(&module);
}
