/* Model configuration: config.pbtxt parsing (realistic Triton configs, error positions, every
 * truncation and many mutations of valid text), completion from ONNX models, JSON rendering,
 * repository scanning and version policies. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "testutil.h"

#define ONNX_DATA "/usr/share/libonnx-testdata/data"

static const char *examples_path(const char *rel) {
    static char buf[2][1024];
    static int k;
    const char *root = getenv("CELER_EXAMPLES");
    char *p = buf[k++ & 1];
    snprintf(p, 1024, "%s/%s", root ? root : "examples", rel);
    return p;
}

/* Parses `text` from an exact-size heap copy (so reading past `len` is caught by ASan). */
static celer_status parse(const char *text, celer_arena *arena, celer_model_config *cfg) {
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    celer_status st = celer_config_parse(copy, n, "cfg", arena, cfg);
    free(copy);
    return st;
}

static void expect_error(const char *text, celer_status want, const char *substr) {
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config cfg;
    celer_status st = parse(text, &arena, &cfg);
    if (st != want || !strstr(celer_error_message(), substr))
        fail_msg("text <<%s>>: got status %d message \"%s\"; want %d containing \"%s\"", text, st,
                 celer_error_message(), want, substr);
    assert_int_equal(cfg.n_inputs, 0);
    celer_arena_free(&arena);
}

static const char k_resnet[] = "name: \"resnet\"\n"
                               "platform: \"onnxruntime_onnx\"\n"
                               "max_batch_size : 8\n"
                               "input [\n"
                               "  {\n"
                               "    name: \"input\"\n"
                               "    data_type: TYPE_FP32\n"
                               "    format: FORMAT_NCHW\n"
                               "    dims: [ 3, 224, 224 ]\n"
                               "  }\n"
                               "]\n"
                               "output [\n"
                               "  {\n"
                               "    name: \"output\"\n"
                               "    data_type: TYPE_FP32\n"
                               "    dims: [ 1000 ]\n"
                               "    label_filename: \"labels.txt\"\n"
                               "  }\n"
                               "]\n"
                               "instance_group [\n"
                               "  { count: 2, kind: KIND_CPU },\n"
                               "  { kind: KIND_GPU gpus: [ 0 ] }\n"
                               "]\n"
                               "dynamic_batching {\n"
                               "  preferred_batch_size: [ 4, 8 ]\n"
                               "  max_queue_delay_microseconds: 100\n"
                               "  default_queue_policy {\n"
                               "    max_queue_size: 64\n"
                               "    default_timeout_microseconds: 5000\n"
                               "    allow_timeout_override: true\n"
                               "    timeout_action: REJECT\n"
                               "  }\n"
                               "}\n"
                               "response_cache { enable: true }\n";

static const char k_specific[] = "name: 'mlp'\n"
                                 "backend: \"onnxruntime\"\n"
                                 "version_policy: { specific: { versions: [1, 3] } }\n"
                                 "max_batch_size: 0\n"
                                 "input { name: \"features\" data_type: TYPE_FP32 dims: -1 dims: 16 }\n"
                                 "output: { name: \"scores\", data_type: 11, dims: [-1, 0x8] };\n";

static const char k_params[] =
    "# A config with the parts celer skips\n"
    "name: \"bert\"  # trailing comment\n"
    "platform: \"onnxruntime_onnx\"\n"
    "max_batch_size: 4\n"
    "parameters { key: \"intra_op_thread_count\" value: { string_value: \"2\" } }\n"
    "parameters [{ key: \"execution_mode\", value { string_value: \"0\" } },\n"
    "            { key: \"k\\\"q\", value < string_value: 'it\\'s \\x41\\101\\u00e9' \" more\" > }]\n"
    "parameters: { key: \"intra_op_thread_count\" value { string_value: \"4\" } }\n"
    "optimization { execution_accelerators { cpu_execution_accelerator : [ { name : \"openvino\"\n"
    "    parameters { key: \"precision\" value: \"FP16\" } } ] }\n"
    "  graph { level: -1 } priority: PRIORITY_MAX cuda { graphs: true busy_wait_events: false } }\n"
    "model_warmup [ { name: \"w\" batch_size: 1 inputs { key: \"ids\" value {\n"
    "    data_type: TYPE_INT64 dims: [16] zero_data: true } } } ]\n"
    "metric_tags < foo: 1.5e-3, bar: -inf; baz: [] >\n"
    "version_policy: { latest: { num_versions: 2 } }\n"
    "input [ { name: \"ids\" data_type: TYPE_INT64 dims: [ -1 ] allow_ragged_batch: false },\n"
    "        { name: \"len\" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } optional: true } ]\n"
    "output { name: \"logits\" data_type: TYPE_FP16 dims: [ -1, 2 ] }\n"
    "batch_input []\n"
    "some_future_field { nested { deeper: [1, 2, 3] } x: \"}\" }\n";

static void test_parse_resnet(void **state) {
    (void)state;
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    assert_int_equal(parse(k_resnet, &arena, &c), CELER_OK);
    assert_string_equal(c.name, "resnet");
    assert_string_equal(c.platform, "onnxruntime_onnx");
    assert_null(c.backend);
    assert_int_equal(c.max_batch_size, 8);
    assert_int_equal(c.n_inputs, 1);
    assert_string_equal(c.inputs[0].name, "input");
    assert_int_equal(c.inputs[0].dtype, CELER_FLOAT);
    assert_int_equal(c.inputs[0].rank, 3);
    assert_int_equal(c.inputs[0].dims[0], 3);
    assert_int_equal(c.inputs[0].dims[2], 224);
    assert_false(c.inputs[0].optional);
    assert_int_equal(c.n_outputs, 1);
    assert_int_equal(c.outputs[0].rank, 1);
    assert_int_equal(c.outputs[0].dims[0], 1000);
    assert_string_equal(c.outputs[0].label_filename, "labels.txt");
    assert_int_equal(c.instance_count, 3); /* 2 + the default 1 */
    assert_true(c.dynamic_batching);
    assert_int_equal(c.n_preferred, 2);
    assert_int_equal(c.preferred_batch_size[0], 4);
    assert_int_equal(c.preferred_batch_size[1], 8);
    assert_int_equal(c.max_queue_delay_us, 100);
    assert_int_equal(c.max_queue_size, 64);
    assert_int_equal(c.default_timeout_us, 5000);
    assert_true(c.allow_timeout_override);
    assert_true(c.response_cache);
    assert_int_equal(c.version_policy, CELER_VERSIONS_LATEST);
    assert_int_equal(c.latest_num_versions, 1);
    assert_int_equal(c.n_parameters, 0);
    celer_arena_free(&arena);
}

static void test_parse_specific(void **state) {
    (void)state;
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    assert_int_equal(parse(k_specific, &arena, &c), CELER_OK);
    assert_string_equal(c.name, "mlp");
    assert_string_equal(c.backend, "onnxruntime");
    assert_int_equal(c.version_policy, CELER_VERSIONS_SPECIFIC);
    assert_int_equal(c.n_versions, 2);
    assert_int_equal(c.versions[0], 1);
    assert_int_equal(c.versions[1], 3);
    assert_int_equal(c.inputs[0].rank, 2);
    assert_int_equal(c.inputs[0].dims[0], -1);
    assert_int_equal(c.inputs[0].dims[1], 16);
    assert_int_equal(c.outputs[0].dtype, CELER_FLOAT); /* data_type given by number */
    assert_int_equal(c.outputs[0].dims[1], 8);
    assert_false(c.dynamic_batching);
    assert_int_equal(c.instance_count, 0);
    celer_arena_free(&arena);
}

static void test_parse_params_and_unknown(void **state) {
    (void)state;
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    assert_int_equal(parse(k_params, &arena, &c), CELER_OK);
    assert_string_equal(c.name, "bert");
    assert_int_equal(c.n_parameters, 3);
    assert_string_equal(c.parameter_keys[0], "intra_op_thread_count");
    assert_string_equal(c.parameter_values[0], "4"); /* map: the last entry wins */
    assert_string_equal(c.parameter_keys[1], "execution_mode");
    assert_string_equal(c.parameter_values[1], "0");
    assert_string_equal(c.parameter_keys[2], "k\"q");
    assert_string_equal(c.parameter_values[2], "it's AA\xc3\xa9 more");
    assert_int_equal(c.version_policy, CELER_VERSIONS_LATEST);
    assert_int_equal(c.latest_num_versions, 2);
    assert_int_equal(c.n_inputs, 2);
    assert_int_equal(c.inputs[0].dtype, CELER_INT64);
    assert_true(c.inputs[1].optional);
    assert_true(c.inputs[1].has_reshape);
    assert_int_equal(c.inputs[1].reshape_rank, 0);
    assert_int_equal(c.outputs[0].dtype, CELER_FLOAT16);
    celer_arena_free(&arena);
}

static void test_parse_misc(void **state) {
    (void)state;
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    /* Empty text and a BOM: defaults. */
    assert_int_equal(parse("", &arena, &c), CELER_OK);
    assert_int_equal(c.version_policy, CELER_VERSIONS_LATEST);
    assert_int_equal(c.latest_num_versions, 1);
    assert_int_equal(parse("\xef\xbb\xbf# only a comment", &arena, &c), CELER_OK);
    /* all {}; no dims or data_type: left for completion; octal; bool spellings. */
    assert_int_equal(parse("version_policy { all {} } input { name: \"x\" optional: True } max_batch_size: 010\n"
                           "response_cache { enable: 1 }",
                           &arena, &c),
                     CELER_OK);
    assert_int_equal(c.version_policy, CELER_VERSIONS_ALL);
    assert_int_equal(c.inputs[0].rank, -1);
    assert_int_equal(c.inputs[0].dtype, CELER_UNDEFINED);
    assert_true(c.inputs[0].optional);
    assert_int_equal(c.max_batch_size, 8);
    assert_true(c.response_cache);
    /* An explicit empty dims list is rank 0 (a scalar), not "absent". */
    assert_int_equal(parse("input { name: \"s\" data_type: TYPE_STRING dims: [] }", &arena, &c), CELER_OK);
    assert_int_equal(c.inputs[0].rank, 0);
    assert_int_equal(c.inputs[0].dtype, CELER_STRING);
    /* instance_group count 0 is Triton's default of 1; latest {} is 1. */
    assert_int_equal(parse("instance_group { count: 0 } version_policy { latest {} }", &arena, &c), CELER_OK);
    assert_int_equal(c.instance_count, 1);
    assert_int_equal(c.latest_num_versions, 1);
    assert_int_equal(parse("default_model_filename: \"model.onnx\"", &arena, &c), CELER_OK);
    celer_arena_free(&arena);
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_error("name: \"x\"\ninput [ {\n name: \"a\"\n", CELER_ERR_PARSE,
                 "cfg:4:1: expected '}' to close 'input' opened at 2:9, got end of file");
    expect_error("max_batch_size: \"8\"", CELER_ERR_INVALID,
                 "cfg:1:17: max_batch_size: expected an integer, got \"8\"");
    expect_error("max_batch_size 8", CELER_ERR_PARSE, "cfg:1:16: expected ':' between 'max_batch_size' and its value");
    expect_error("max_batch_size: -1", CELER_ERR_INVALID, "max_batch_size: -1 is out of range");
    expect_error("max_batch_size: 1.5", CELER_ERR_INVALID, "expected an integer, got 1.5");
    expect_error("max_batch_size: 99999999999999999999", CELER_ERR_INVALID, "expected an integer");
    expect_error("max_batch_size: { }", CELER_ERR_INVALID, "expected an integer, got a message");
    expect_error("input { name: \"a\" data_type: TYPE_FLOAT32 }", CELER_ERR_INVALID,
                 "input 'a' data_type: unknown value TYPE_FLOAT32 (expected one of TYPE_INVALID, TYPE_BOOL");
    expect_error("input { name: \"a\" data_type: 99 }", CELER_ERR_INVALID, "unknown value 99");
    expect_error("name: \"a\\q\"", CELER_ERR_PARSE, "cfg:1:9: unknown escape '\\q'");
    expect_error("name: \"a\\0\"", CELER_ERR_PARSE, "NUL");
    expect_error("name: \"a\\u12\"", CELER_ERR_PARSE, "\\u escape needs 4 hex digits");
    expect_error("name: \"a\\ud800\"", CELER_ERR_PARSE, "invalid code point");
    expect_error("name: \"a\\400\"", CELER_ERR_PARSE, "octal escape");
    expect_error("name: \"abc\nplatform: \"x\"", CELER_ERR_PARSE, "cfg:1:7: unterminated string");
    expect_error("name: \"abc\\", CELER_ERR_PARSE, "unterminated string");
    expect_error("name: abc", CELER_ERR_INVALID, "name: expected a quoted string, got abc");
    expect_error("input [ {name:\"a\"} {name:\"b\"} ]", CELER_ERR_PARSE,
                 "cfg:1:20: expected ',' or ']' in the list 'input' opened at 1:7, got '{'");
    expect_error("}", CELER_ERR_PARSE, "cfg:1:1: expected a field name, got '}'");
    expect_error("input { name: \"a\" ] }", CELER_ERR_PARSE, "expected a field name or '}', got ']'");
    expect_error("dynamic_batching < max_queue_delay_microseconds: 5 }", CELER_ERR_PARSE, "got '}'");
    expect_error("input { name: \"a\" dims [1] }", CELER_ERR_PARSE, "cfg:1:25: expected ':' between 'dims'");
    expect_error("name:", CELER_ERR_PARSE, "expected a value for 'name', got end of file");
    expect_error("name: \"a\"\nname: \"b\"", CELER_ERR_INVALID, "cfg:2:7: 'name' is given twice (first at 1:7)");
    expect_error("input { name: \"a\" name: \"b\" }", CELER_ERR_INVALID, "input #1: 'name' is given twice");
    expect_error("input { name: \"a\" } input { name: \"a\" }", CELER_ERR_INVALID, "input 'a' is declared twice");
    expect_error("input { data_type: TYPE_FP32 }", CELER_ERR_INVALID, "input #1 has no name");
    expect_error("input { name: \"\" }", CELER_ERR_INVALID, "name is empty");
    expect_error("input { name: \"a\" dims: [1,2,3,4,5,6,7,8,9] }", CELER_ERR_LIMIT,
                 "input 'a' dims: more than 8 dims");
    expect_error("input { name: \"a\" dims: [3, 0] }", CELER_ERR_INVALID,
                 "cfg:1:29: input 'a' dims: a dim must be >= 1");
    expect_error("input { name: \"a\" dims: [3, -2] }", CELER_ERR_INVALID, "-2 is out of range");
    expect_error("input { name: \"a\" dims: [2, 3] reshape { shape: [ 5 ] } }", CELER_ERR_INVALID, "reshape must keep");
    /* Triton's rule with variable dims: the runs of fixed dims between them keep their counts */
    expect_error("input { name: \"a\" dims: [2, 4, -1, 6] reshape { shape: [ 4, -1, 2, 6 ] } }", CELER_ERR_INVALID,
                 "reshape must keep");
    expect_error("input { name: \"a\" dims: [2, -1] reshape { shape: [ -1, 2 ] } }", CELER_ERR_INVALID,
                 "reshape must keep");
    expect_error("input { name: \"a\" dims: [-1, 6] reshape { shape: [ -1, -1 ] } }", CELER_ERR_INVALID,
                 "reshape must keep");
    expect_error("input: \"a\"", CELER_ERR_INVALID, "input: expected a message { ... }, got \"a\"");
    expect_error("name: \"a\" $", CELER_ERR_PARSE, "cfg:1:11: unexpected character '$'");
    expect_error("name: \"a\" \x01", CELER_ERR_PARSE, "unexpected byte 0x01");
    expect_error("version_policy { latest {} all {} }", CELER_ERR_INVALID, "give only one of latest, all, specific");
    expect_error("version_policy { newest {} }", CELER_ERR_INVALID, "unknown policy 'newest'");
    expect_error("version_policy { latest { num_versions: 0 } }", CELER_ERR_INVALID, "num_versions: 0 is out of range");
    expect_error("version_policy { specific { } }", CELER_ERR_INVALID, "list at least one version");
    expect_error("version_policy { specific { versions: [0] } }", CELER_ERR_INVALID, "0 is out of range");
    expect_error("instance_group { kind: KIND_TPU }", CELER_ERR_INVALID, "instance_group kind: unknown value KIND_TPU");
    expect_error("instance_group { count: -2 }", CELER_ERR_INVALID, "instance_group count: -2 is out of range");
    expect_error("dynamic_batching { preferred_batch_size: 0 }", CELER_ERR_INVALID, "preferred_batch_size: 0 is out");
    expect_error("dynamic_batching { preferred_batch_size: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17] }",
                 CELER_ERR_LIMIT, "more than 16 preferred_batch_size");
    expect_error("dynamic_batching { default_queue_policy { timeout_action: WAIT } }", CELER_ERR_INVALID,
                 "expected one of REJECT, DELAY");
    expect_error("dynamic_batching { default_queue_policy { allow_timeout_override: yes } }", CELER_ERR_INVALID,
                 "expected true or false, got yes");
    expect_error("parameters { value { string_value: \"x\" } }", CELER_ERR_INVALID, "parameters entry has no key");
    expect_error("sequence_batching { }", CELER_ERR_UNSUPPORTED, "sequence_batching is not supported");
    expect_error("default_model_filename: \"resnet.onnx\"", CELER_ERR_UNSUPPORTED,
                 "default_model_filename \"resnet.onnx\"");

    /* Caps: nesting depth, string length, field count, input count, text size. */
    char *deep = malloc(4096);
    size_t k = 0;
    for (int i = 0; i < 40; i++) k += (size_t)sprintf(deep + k, "a {");
    for (int i = 0; i < 40; i++) deep[k++] = '}';
    deep[k] = 0;
    expect_error(deep, CELER_ERR_LIMIT, "nested deeper than 32");
    free(deep);

    size_t big = 70000;
    char *s = malloc(big + 16);
    memcpy(s, "name: \"", 7);
    memset(s + 7, 'x', big);
    memcpy(s + 7 + big, "\"", 2);
    expect_error(s, CELER_ERR_LIMIT, "string longer than 65536 bytes");
    free(s);

    /* 40 strings of 2000 bytes concatenate past the cap too. */
    s = malloc(100000);
    k = (size_t)sprintf(s, "name: ");
    for (int i = 0; i < 40; i++) {
        s[k++] = '"';
        memset(s + k, 'y', 2000);
        k += 2000;
        s[k++] = '"';
    }
    s[k] = 0;
    expect_error(s, CELER_ERR_LIMIT, "string longer than");
    free(s);

    s = malloc(2000000);
    k = 0;
    for (int i = 0; i < 100001 / 2 + 1; i++) k += (size_t)sprintf(s + k, "f{g:1}");
    expect_error(s, CELER_ERR_LIMIT, "more than 100000 fields");
    k = 0;
    for (int i = 0; i < 257; i++) k += (size_t)sprintf(s + k, "input{name:\"i%d\"}\n", i);
    expect_error(s, CELER_ERR_LIMIT, "more than 256 input entries");
    free(s);

    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    static const char x[] = "name: \"a\"";
    assert_int_equal(celer_config_parse(x, (size_t)5 << 20, "big", &arena, &c), CELER_ERR_LIMIT);
    assert_non_null(strstr(celer_error_message(), "big: "));
    celer_arena_free(&arena);
}

/* Every prefix and many single-byte mutations of valid configs: an error with a message, or a
 * valid parse; never a crash (ASan checks reads past the exact-size copy). */
static void check_robust(const char *text) {
    size_t n = strlen(text);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    for (size_t len = 0; len <= n; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, text, len);
        celer_status st = celer_config_parse(copy, len, "t", &arena, &c);
        if (st) assert_true(strncmp(celer_error_message(), "t:", 2) == 0);
        free(copy);
    }
    static const char bytes[] = "{}[]<>:,;\"'\\#-0x \n\0\xff"
                                "a";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int it = 0; it < 3000; it++) {
        char *copy = malloc(n);
        memcpy(copy, text, n);
        for (int m = 0; m < 1 + it % 3; m++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            copy[seed % n] = bytes[(seed >> 32) % (sizeof bytes - 1)];
        }
        celer_status st = celer_config_parse(copy, n, "t", &arena, &c);
        if (st) assert_true(strncmp(celer_error_message(), "t:", 2) == 0);
        free(copy);
        if (it % 500 == 0) { /* keep the arena small */
            celer_arena_free(&arena);
            celer_arena_init(&arena, 0, 0);
        }
    }
    celer_arena_free(&arena);
}

static void test_parse_truncations_and_mutations(void **state) {
    (void)state;
    check_robust(k_resnet);
    check_robust(k_specific);
    check_robust(k_params);
}

/* ---- completion ---- */

static celer_model *load(const char *path) {
    celer_model *m = NULL;
    celer_status st = celer_model_load(path, NULL, &m);
    if (st) fail_msg("loading %s: %s", path, celer_error_message());
    return m;
}

/* Parses `text` (NULL: no config.pbtxt) and completes it against `model`. */
static celer_status complete(const char *text, const celer_model *model, int default_max_batch, celer_arena *arena,
                             celer_model_config *cfg) {
    if (text) {
        celer_status st = parse(text, arena, cfg);
        if (st) fail_msg("parse: %s", celer_error_message());
    } else {
        memset(cfg, 0, sizeof *cfg);
    }
    return celer_config_complete(cfg, "mlp", model, default_max_batch, arena);
}

static void expect_complete_error(const char *text, const celer_model *model, celer_status want, const char *substr) {
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    celer_status st = complete(text, model, 8, &arena, &c);
    if (st != want || !strstr(celer_error_message(), substr))
        fail_msg("config <<%s>>: got status %d \"%s\"; want %d containing \"%s\"", text ? text : "(none)", st,
                 celer_error_message(), want, substr);
    celer_arena_free(&arena);
}

static void test_complete_mlp(void **state) {
    (void)state;
    celer_model *m = load(examples_path("mlp/model.onnx"));
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;

    /* No config: everything from the model, first dim becomes the batch dim. */
    assert_int_equal(complete(NULL, m, 8, &arena, &c), CELER_OK);
    assert_string_equal(c.name, "mlp");
    assert_string_equal(c.platform, "onnxruntime_onnx");
    assert_string_equal(c.backend, "onnxruntime");
    assert_int_equal(c.max_batch_size, 8);
    assert_int_equal(c.n_inputs, 1);
    assert_string_equal(c.inputs[0].name, "features");
    assert_int_equal(c.inputs[0].dtype, CELER_FLOAT);
    assert_int_equal(c.inputs[0].rank, 1);
    assert_int_equal(c.inputs[0].dims[0], 16);
    assert_int_equal(c.n_outputs, 1);
    assert_string_equal(c.outputs[0].name, "scores");
    assert_int_equal(c.outputs[0].rank, 1);
    assert_int_equal(c.outputs[0].dims[0], 8);
    assert_true(c.dynamic_batching);
    assert_int_equal(c.max_queue_delay_us, 0);
    assert_int_equal(c.version_policy, CELER_VERSIONS_LATEST);
    assert_int_equal(c.latest_num_versions, 1);

    /* No default batch: full dims, no batching. */
    assert_int_equal(complete(NULL, m, 0, &arena, &c), CELER_OK);
    assert_int_equal(c.max_batch_size, 0);
    assert_int_equal(c.inputs[0].rank, 2);
    assert_int_equal(c.inputs[0].dims[0], -1);
    assert_false(c.dynamic_batching);

    /* Explicit batching config. */
    assert_int_equal(
        complete("name: \"mlp\" max_batch_size: 4 input { name: \"features\" data_type: TYPE_FP32 dims: [16] }\n"
                 "dynamic_batching { preferred_batch_size: 4 max_queue_delay_microseconds: 200 }",
                 m, 8, &arena, &c),
        CELER_OK);
    assert_int_equal(c.max_batch_size, 4);
    assert_int_equal(c.n_outputs, 1); /* taken from the model */
    assert_int_equal(c.outputs[0].dims[0], 8);
    assert_int_equal(c.max_queue_delay_us, 200);

    /* max_batch_size 0 with full dims: no implicit batch dim. */
    assert_int_equal(complete(k_specific, m, 8, &arena, &c), CELER_OK);
    assert_int_equal(c.max_batch_size, 0);
    assert_int_equal(c.inputs[0].rank, 2);
    assert_false(c.dynamic_batching);

    /* dims without the batch dim and no max_batch_size: auto-completed to the default. */
    assert_int_equal(complete("input { name: \"features\" dims: [16] } output { name: \"scores\" }", m, 6, &arena, &c),
                     CELER_OK);
    assert_int_equal(c.max_batch_size, 6);
    assert_int_equal(c.inputs[0].dtype, CELER_FLOAT);
    assert_int_equal(c.outputs[0].rank, 1);

    /* A config with only scheduling settings. */
    assert_int_equal(complete("instance_group [{ count: 2 kind: KIND_CPU }]", m, 8, &arena, &c), CELER_OK);
    assert_int_equal(c.max_batch_size, 8);
    assert_int_equal(c.instance_count, 2);

    /* Idempotent: completing a completed config changes nothing. */
    assert_int_equal(celer_config_complete(&c, "mlp", m, 8, &arena), CELER_OK);
    assert_int_equal(c.inputs[0].rank, 1);

    celer_arena_free(&arena);
    celer_model_free(m);
}

static void test_complete_mismatches(void **state) {
    (void)state;
    celer_model *m = load(examples_path("mlp/model.onnx"));
    expect_complete_error(
        "max_batch_size: 8 input { name: \"features\" data_type: TYPE_INT64 dims: [16] }", m, CELER_ERR_INVALID,
        "model 'mlp': input 'features': config says TYPE_INT64 [16] plus the batch dim, model has FP32 "
        "[?,16]: the data types differ");
    expect_complete_error("max_batch_size: 8 input { name: \"features\" data_type: TYPE_FP32 dims: [15] }", m,
                          CELER_ERR_INVALID,
                          "config says TYPE_FP32 [15] plus the batch dim, model has FP32 [?,16]: the dims differ");
    expect_complete_error("max_batch_size: 8 input { name: \"features\" data_type: TYPE_FP32 dims: [-1, 16] }", m,
                          CELER_ERR_INVALID, "the ranks differ");
    expect_complete_error("max_batch_size: 0 input { name: \"features\" data_type: TYPE_FP32 dims: [4, 16, 1] }", m,
                          CELER_ERR_INVALID, "config says TYPE_FP32 [4,16,1], model has FP32 [?,16]: the ranks differ");
    expect_complete_error("output { name: \"features\" }", m, CELER_ERR_INVALID,
                          "model 'mlp': config output 'features' is not an output of the model (outputs: 'scores')");
    expect_complete_error("input { name: \"x\" }", m, CELER_ERR_INVALID,
                          "config input 'x' is not an input of the model (inputs: 'features')");
    expect_complete_error("name: \"other\"", m, CELER_ERR_INVALID, "config.pbtxt says name \"other\"");
    expect_complete_error("platform: \"tensorrt_plan\"", m, CELER_ERR_UNSUPPORTED,
                          "platform \"tensorrt_plan\" is not supported");
    expect_complete_error("backend: \"python\"", m, CELER_ERR_UNSUPPORTED, "backend \"python\"");
    expect_complete_error("max_batch_size: 8 dynamic_batching { preferred_batch_size: [4, 16] }", m, CELER_ERR_INVALID,
                          "preferred_batch_size 16 exceeds max_batch_size 8");
    expect_complete_error("max_batch_size: 1 input { name: \"features\" dims: [1,1,1,1,1,1,1,1] }", m, CELER_ERR_LIMIT,
                          "plus the batch dim exceed 8");
    celer_model_free(m);

    /* A model with a fixed first dim cannot batch: node/test_abs has x: float [3,4,5]. */
    m = load(ONNX_DATA "/node/test_abs/model.onnx");
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    memset(&c, 0, sizeof c);
    assert_int_equal(celer_config_complete(&c, "abs", m, 8, &arena), CELER_OK);
    assert_int_equal(c.max_batch_size, 0);
    assert_int_equal(c.inputs[0].rank, 3);
    assert_int_equal(c.inputs[0].dims[0], 3);
    assert_false(c.dynamic_batching);
    /* reshape: the request carries [60], the model sees [3,4,5]. */
    assert_int_equal(
        parse("input { name: \"x\" data_type: TYPE_FP32 dims: [60] reshape { shape: [3,4,5] } }", &arena, &c),
        CELER_OK);
    assert_int_equal(celer_config_complete(&c, "abs", m, 8, &arena), CELER_OK);
    assert_int_equal(c.inputs[0].rank, 1);
    assert_true(c.inputs[0].has_reshape);
    assert_int_equal(parse("input { name: \"x\" data_type: TYPE_FP32 dims: [2, 4, -1, 6] reshape { shape: [8, -1, 1, 6] } }",
                           &arena, &c), CELER_OK); /* Triton's own example */
    /* an empty reshape is for batching models only (a scalar per row) */
    assert_int_equal(parse("input { name: \"x\" data_type: TYPE_FP32 dims: [1] reshape { shape: [] } }", &arena, &c),
                     CELER_OK);
    assert_int_equal(celer_config_complete(&c, "abs", m, 8, &arena), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "cannot have empty reshape for non-batching model"));
    assert_int_equal(parse("max_batch_size: 4", &arena, &c), CELER_OK);
    assert_int_equal(celer_config_complete(&c, "abs", m, 8, &arena), CELER_ERR_INVALID);
    assert_non_null(
        strstr(celer_error_message(),
               "model 'abs': input 'x': max_batch_size 4 needs a variable first (batch) dim, model has FP32 [3,4,5]"));
    celer_arena_free(&arena);
    celer_model_free(m);
}

/* ---- JSON ---- */

static void expect_in(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("\"%s\" not in %s", needle, hay);
}

static void test_json(void **state) {
    (void)state;
    celer_model *m = load(examples_path("mlp/model.onnx"));
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c;
    assert_int_equal(complete("max_batch_size: 8 instance_group { count: 3 }\n"
                              "dynamic_batching { preferred_batch_size: [2, 8] max_queue_delay_microseconds: 50\n"
                              "  default_queue_policy { max_queue_size: 10 default_timeout_microseconds: 7 } }\n"
                              "response_cache { enable: true }\n"
                              "parameters { key: \"a\\\"b\" value { string_value: \"v\\n\" } }\n"
                              "output { name: \"scores\" data_type: TYPE_FP32 dims: [8] label_filename: \"l.txt\" }",
                              m, 8, &arena, &c),
                     CELER_OK);
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_config_to_json(&c, &b);
    assert_int_equal(b.status, CELER_OK);
    const char *j = b.data;
    expect_in(j, "{\"name\":\"mlp\",\"platform\":\"onnxruntime_onnx\",\"backend\":\"onnxruntime\"");
    expect_in(j, "\"version_policy\":{\"latest\":{\"num_versions\":1}}");
    expect_in(j, "\"max_batch_size\":8");
    expect_in(j,
              "\"input\":[{\"name\":\"features\",\"data_type\":\"TYPE_FP32\",\"format\":\"FORMAT_NONE\",\"dims\":[16],"
              "\"is_shape_tensor\":false,\"allow_ragged_batch\":false,\"optional\":false}]");
    expect_in(j,
              "\"output\":[{\"name\":\"scores\",\"data_type\":\"TYPE_FP32\",\"dims\":[8],\"label_filename\":\"l.txt\"");
    expect_in(j, "\"instance_group\":[{\"name\":\"mlp\",\"kind\":\"KIND_CPU\",\"count\":3}]");
    expect_in(j, "\"dynamic_batching\":{\"preferred_batch_size\":[2,8],\"max_queue_delay_microseconds\":50");
    expect_in(j, "\"default_queue_policy\":{\"default_timeout_microseconds\":7,\"allow_timeout_override\":false,"
                 "\"max_queue_size\":10}");
    expect_in(j, "\"response_cache\":{\"enable\":true}");
    expect_in(j, "\"parameters\":{\"a\\\"b\":{\"string_value\":\"v\\n\"}}");
    assert_int_equal(j[strlen(j) - 1], '}');

    /* Version policies and reshape. */
    celer_jbuf_reset(&b);
    assert_int_equal(parse("version_policy { specific { versions: [3, 1] } }\n"
                           "input { name: \"x\" data_type: TYPE_BOOL dims: [1] reshape { shape: [] } }",
                           &arena, &c),
                     CELER_OK);
    celer_config_to_json(&c, &b);
    expect_in(b.data, "\"version_policy\":{\"specific\":{\"versions\":[3,1]}}");
    expect_in(b.data, "\"data_type\":\"TYPE_BOOL\",\"format\":\"FORMAT_NONE\",\"dims\":[1],\"reshape\":{\"shape\":[]}");
    assert_null(strstr(b.data, "dynamic_batching"));
    assert_null(strstr(b.data, "instance_group"));
    celer_jbuf_reset(&b);
    assert_int_equal(parse("version_policy { all { } }", &arena, &c), CELER_OK);
    celer_config_to_json(&c, &b);
    expect_in(b.data, "\"version_policy\":{\"all\":{}}");
    celer_jbuf_free(&b);
    celer_arena_free(&arena);
    celer_model_free(m);
}

/* ---- the JSON form (a load's `config` parameter) ---- */

/* Parses JSON from an exact-size heap copy. */
static celer_status parse_json(const char *text, celer_arena *arena, celer_model_config *cfg) {
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    celer_status st = celer_config_parse_json(copy, n, "override", arena, cfg);
    free(copy);
    return st;
}

static void expect_json_error(const char *text, celer_status want, const char *substr) {
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config cfg;
    celer_status st = parse_json(text, &arena, &cfg);
    if (st != want || !strstr(celer_error_message(), substr) || strncmp(celer_error_message(), "override", 8))
        fail_msg("%s: got %s '%s', want %s with '%s'", text, celer_status_name(st), celer_error_message(),
                 celer_status_name(want), substr);
    assert_null(cfg.inputs); /* nothing kept from a failed parse */
    celer_arena_free(&arena);
}

/* Triton's JSON of a config (what GET .../config and the gRPC ModelConfig's JSON mapping write)
 * reads back into the same config: every field of the text format, snake_case or lowerCamelCase,
 * 64-bit integers as numbers or strings, enums as names in any case, the parameters map. */
static void test_json_config(void **state) {
    (void)state;
    celer_model *m = load(examples_path("mlp/model.onnx"));
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_model_config c, back;
    assert_int_equal(complete("max_batch_size: 8 instance_group { count: 3 }\n"
                              "dynamic_batching { preferred_batch_size: [2, 8] max_queue_delay_microseconds: 50\n"
                              "  default_queue_policy { max_queue_size: 10 default_timeout_microseconds: 7 } }\n"
                              "response_cache { enable: true }\n"
                              "version_policy { specific { versions: [3, 1] } }\n"
                              "parameters { key: \"a\\\"b\" value { string_value: \"v\\n\" } }\n"
                              "output { name: \"scores\" data_type: TYPE_FP32 dims: [8] label_filename: \"l.txt\" }",
                              m, 8, &arena, &c),
                     CELER_OK);
    celer_jbuf a, b;
    celer_jbuf_init(&a, 0);
    celer_jbuf_init(&b, 0);
    celer_config_to_json(&c, &a);
    assert_int_equal(celer_config_parse_json(a.data, a.len, "override", &arena, &back), CELER_OK);
    celer_config_to_json(&back, &b);
    assert_string_equal(a.data, b.data); /* the round trip changes nothing */
    celer_jbuf_free(&a);
    celer_jbuf_free(&b);

    assert_int_equal(parse_json("{\"maxBatchSize\": \"16\", \"versionPolicy\": {\"latest\": {\"numVersions\": 2}},"
                                " \"input\": [{\"name\": \"features\", \"dataType\": \"type_fp32\", \"dims\": [\"16\"]}],"
                                " \"output\": [{\"name\": \"scores\", \"label_filename\": \"\"}],"
                                " \"dynamicBatching\": {}, \"instanceGroup\": [{\"kind\": \"KIND_GPU\", \"count\": 2}],"
                                " \"parameters\": {\"k\": {\"stringValue\": \"v\"}, \"e\": {}},"
                                " \"optimization\": {\"anything\": [1, 2]}, \"model_warmup\": null, \"unknown\": {\"x\": 1}}",
                                &arena, &c),
                     CELER_OK);
    assert_int_equal(c.max_batch_size, 16);
    assert_int_equal(c.latest_num_versions, 2);
    assert_int_equal(c.n_inputs, 1);
    assert_int_equal(c.inputs[0].dtype, CELER_FLOAT);
    assert_int_equal(c.inputs[0].rank, 1);
    assert_int_equal(c.inputs[0].dims[0], 16);
    assert_null(c.outputs[0].label_filename); /* "" is none */
    assert_int_equal(c.outputs[0].rank, -1);  /* dims left to completion */
    assert_true(c.dynamic_batching);
    assert_int_equal(c.instance_count, 2);
    assert_int_equal(c.n_parameters, 2);
    assert_string_equal(c.parameter_keys[0], "k");
    assert_string_equal(c.parameter_values[0], "v");
    assert_string_equal(c.parameter_values[1], "");
    assert_int_equal(parse_json("{\"max_batch_size\": \"010\"}", &arena, &c), CELER_OK);
    assert_int_equal(c.max_batch_size, 10); /* decimal: JSON has no octal */
    assert_int_equal(parse_json("{}", &arena, &c), CELER_OK);
    assert_int_equal(c.n_inputs, 0);
    assert_int_equal(c.version_policy, CELER_VERSIONS_LATEST);
    assert_int_equal(parse_json("{\"version_policy\": {\"all\": {}}, \"dims\": []}", &arena, &c), CELER_OK);
    assert_int_equal(c.version_policy, CELER_VERSIONS_ALL);

    expect_json_error("", CELER_ERR_PARSE, "");
    expect_json_error("{\"max_batch_size\": 4", CELER_ERR_PARSE, "");
    expect_json_error("[1, 2]", CELER_ERR_INVALID, "expected a JSON object");
    /* not UTF-8: two names differing in such bytes would be one once written (fuzz_load's find) */
    expect_json_error("{\"input\": [{\"name\": \"x\xb9\", \"data_type\": \"TYPE_FP32\", \"dims\": [1]}, "
                      "{\"name\": \"x\xbd\", \"data_type\": \"TYPE_FP32\", \"dims\": [1]}]}",
                      CELER_ERR_PARSE, "not UTF-8");
    expect_json_error("\"config\"", CELER_ERR_INVALID, "expected a JSON object");
    expect_json_error("{\"max_batch_size\": \"four\"}", CELER_ERR_INVALID, "max_batch_size: expected an integer");
    expect_json_error("{\"max_batch_size\": 1.5}", CELER_ERR_INVALID, "max_batch_size");
    expect_json_error("{\"max_batch_size\": -1}", CELER_ERR_INVALID, "out of range");
    expect_json_error("{\"max_batch_size\": 4, \"max_batch_size\": 8}", CELER_ERR_INVALID, "given twice");
    expect_json_error("{\"name\": 7}", CELER_ERR_INVALID, "name: expected a quoted string");
    expect_json_error("{\"input\": [{\"name\": \"x\", \"data_type\": \"TYPE_FP33\"}]}", CELER_ERR_INVALID,
                      "unknown value \"TYPE_FP33\"");
    expect_json_error("{\"input\": [{\"name\": \"x\", \"dims\": [[1]]}]}", CELER_ERR_INVALID, "nested arrays");
    expect_json_error("{\"input\": [[{\"name\": \"x\"}]]}", CELER_ERR_INVALID, "nested arrays");
    expect_json_error("{\"input\": [{\"name\": \"x\", \"dims\": [0]}]}", CELER_ERR_INVALID, "a dim must be >= 1");
    expect_json_error("{\"input\": [{\"dims\": [1]}]}", CELER_ERR_INVALID, "has no name");
    expect_json_error("{\"version_policy\": {\"latest\": {}, \"all\": {}}}", CELER_ERR_INVALID, "only one of");
    expect_json_error("{\"sequence_batching\": {}}", CELER_ERR_UNSUPPORTED, "sequence_batching");
    expect_json_error("{\"name\": \"a\\u0000b\"}", CELER_ERR_INVALID, "NUL");
    expect_json_error("{\"response_cache\": {\"enable\": \"yes\"}}", CELER_ERR_INVALID, "expected true or false");
    expect_json_error("{\"parameters\": {\"k\": \"v\"}}", CELER_ERR_INVALID, "parameters value");
    /* nesting past the config's depth cap, and past the JSON parser's */
    char deep[4096] = "{\"optimization\":";
    for (int i = 0; i < 40; i++) strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 41; i++) strcat(deep, "}");
    expect_json_error(deep, CELER_ERR_LIMIT, "nested deeper");
    celer_arena_free(&arena);
    celer_model_free(m);
}

/* ---- repository ---- */

static void put_file(const char *dir, const char *rel, size_t bytes) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    /* create parent folders */
    for (char *s = p + strlen(dir) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < bytes; i++) fputc('x', f);
    fclose(f);
}

static void put_dir(const char *dir, const char *rel) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void test_repo_scan(void **state) {
    (void)state;
    char dir[] = "/tmp/celer_repo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    put_file(dir, "b_model/config.pbtxt", 10);
    put_file(dir, "b_model/1/model.onnx", 100);
    put_file(dir, "b_model/2/model.onnx", 200);
    put_file(dir, "b_model/2/extra.bin", 5);
    put_file(dir, "b_model/2/sub/weights.bin", 7);
    put_file(dir, "b_model/03/model.onnx", 1); /* leading zero: ignored, as Triton does */
    put_file(dir, "b_model/0/model.onnx", 1);
    put_file(dir, "b_model/abc/model.onnx", 1);
    put_file(dir, "b_model/5x/model.onnx", 1);
    put_dir(dir, "b_model/4"); /* no model.onnx */
    put_file(dir, "b_model/6/other.onnx", 1);
    put_dir(dir, "b_model/7");
    put_dir(dir, "b_model/7/model.onnx"); /* a folder, not a file */
    put_file(dir, "b_model/8", 1);        /* a file named like a version */
    put_file(dir, "a_model/10/model.onnx", 3);
    put_file(dir, "a_model/9/model.onnx", 4);
    put_file(dir, ".hidden/1/model.onnx", 1);
    put_file(dir, "readme.txt", 1);
    put_dir(dir, "c_empty");

    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_repo_model *models;
    int n;
    assert_int_equal(celer_repo_scan(dir, &arena, &models, &n), CELER_OK);
    assert_int_equal(n, 3);
    assert_string_equal(models[0].name, "a_model");
    assert_string_equal(models[1].name, "b_model");
    assert_string_equal(models[2].name, "c_empty");

    assert_null(models[0].config_path);
    assert_int_equal(models[0].n_versions, 2);
    assert_int_equal(models[0].versions[0].version, 9); /* numeric order, not text order */
    assert_int_equal(models[0].versions[1].version, 10);
    assert_int_equal(models[0].versions[0].bytes, 4);

    char want[4200];
    snprintf(want, sizeof want, "%s/b_model/config.pbtxt", dir);
    assert_string_equal(models[1].config_path, want);
    assert_true(models[1].config_mtime_ns > 0);
    assert_int_equal(models[1].n_versions, 2);
    assert_int_equal(models[1].versions[0].version, 1);
    assert_int_equal(models[1].versions[0].bytes, 100);
    assert_int_equal(models[1].versions[1].version, 2);
    assert_int_equal(models[1].versions[1].bytes, 212);
    assert_true(models[1].versions[1].mtime_ns > 0);
    snprintf(want, sizeof want, "%s/b_model/2/model.onnx", dir);
    assert_string_equal(models[1].versions[1].path, want);

    assert_int_equal(models[2].n_versions, 0);
    assert_null(models[2].config_path);

    /* A newer file bumps the version's mtime. */
    int64_t before = models[1].versions[1].mtime_ns;
    char p[4200];
    snprintf(p, sizeof p, "%s/b_model/2/sub/weights.bin", dir);
    struct timespec ts[2] = {{.tv_sec = 4000000000LL, .tv_nsec = 5}, {.tv_sec = 4000000000LL, .tv_nsec = 5}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    assert_int_equal(celer_repo_scan(dir, &arena, &models, &n), CELER_OK);
    assert_true(models[1].versions[1].mtime_ns > before);
    assert_true(models[1].versions[1].mtime_ns == 4000000000LL * 1000000000LL + 5);

    /* Version policies over b_model's versions 1, 2 and a_model's 9, 10. */
    int sel[8];
    celer_model_config c;
    assert_int_equal(parse("", &arena, &c), CELER_OK);
    assert_int_equal(celer_repo_select_versions(&c, &models[1], sel), 1);
    assert_int_equal(sel[0], 1);
    assert_int_equal(celer_repo_select_versions(NULL, &models[1], sel), 1);
    assert_int_equal(sel[0], 1);
    assert_int_equal(parse("version_policy { latest { num_versions: 5 } }", &arena, &c), CELER_OK);
    assert_int_equal(celer_repo_select_versions(&c, &models[0], sel), 2);
    assert_int_equal(sel[0], 0);
    assert_int_equal(sel[1], 1);
    assert_int_equal(parse("version_policy { all {} }", &arena, &c), CELER_OK);
    assert_int_equal(celer_repo_select_versions(&c, &models[1], sel), 2);
    assert_int_equal(parse("version_policy { specific { versions: [2, 3, 7] } }", &arena, &c), CELER_OK);
    assert_int_equal(celer_repo_select_versions(&c, &models[1], sel), 1);
    assert_int_equal(sel[0], 1);
    assert_int_equal(parse("version_policy { specific { versions: [10, 9, 9] } }", &arena, &c), CELER_OK);
    assert_int_equal(celer_repo_select_versions(&c, &models[0], sel), 2);
    assert_int_equal(celer_repo_select_versions(&c, &models[2], sel), 0);

    /* Missing repository: an IO error naming it. */
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(celer_repo_scan(missing, &arena, &models, &n), CELER_ERR_IO);
    assert_non_null(strstr(celer_error_message(), missing));
    assert_int_equal(n, 0);
    snprintf(missing, sizeof missing, "%s/readme.txt", dir);
    assert_int_equal(celer_repo_scan(missing, &arena, &models, &n), CELER_ERR_IO);

    /* An empty repository. */
    snprintf(p, sizeof p, "%s/c_empty", dir);
    assert_int_equal(celer_repo_scan(p, &arena, &models, &n), CELER_OK);
    assert_int_equal(n, 0);

    celer_arena_free(&arena);
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* More version folders than the registry serves (CELER_CONFIG_MAX_VERSIONS): the model is listed
 * with a problem naming the count and no versions (a server used to overflow arrays of 256 on
 * it), the other models are unaffected; exactly the cap is fine. The config caps latest too. */
static void test_repo_version_cap(void **state) {
    (void)state;
    char dir[] = "/tmp/celer_repo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char rel[64];
    for (int v = 1; v <= 300; v++) {
        snprintf(rel, sizeof rel, "many/%d/model.onnx", v);
        put_file(dir, rel, 1);
        if (v <= CELER_CONFIG_MAX_VERSIONS) {
            snprintf(rel, sizeof rel, "at_cap/%d/model.onnx", v);
            put_file(dir, rel, 1);
        }
    }
    put_file(dir, "many/config.pbtxt", 1);
    put_file(dir, "one/1/model.onnx", 1);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_repo_model *models;
    int n;
    assert_int_equal(celer_repo_scan(dir, &arena, &models, &n), CELER_OK);
    assert_int_equal(n, 3);
    assert_string_equal(models[0].name, "at_cap");
    assert_null(models[0].problem);
    assert_int_equal(models[0].n_versions, CELER_CONFIG_MAX_VERSIONS);
    assert_int_equal(models[0].versions[CELER_CONFIG_MAX_VERSIONS - 1].version, CELER_CONFIG_MAX_VERSIONS);
    assert_string_equal(models[1].name, "many");
    assert_non_null(models[1].problem);
    assert_non_null(strstr(models[1].problem, "'many' has 300 version folders, at most 256"));
    assert_null(strstr(models[1].problem, dir)); /* names the model, not the server's path */
    assert_int_equal(models[1].n_versions, 0);
    assert_non_null(models[1].config_path);
    assert_null(models[2].problem);
    assert_int_equal(models[2].n_versions, 1);
    int sel[CELER_CONFIG_MAX_VERSIONS];
    celer_model_config c;
    assert_int_equal(parse("version_policy { all {} }", &arena, &c), CELER_OK);
    assert_int_equal(celer_repo_select_versions(&c, &models[0], sel), CELER_CONFIG_MAX_VERSIONS);
    assert_int_equal(celer_repo_select_versions(&c, &models[1], sel), 0);
    celer_arena_free(&arena);
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);

    expect_error("version_policy { latest { num_versions: 257 } }", CELER_ERR_INVALID,
                 "num_versions: 257 is out of range [1, 256]");
    celer_arena_init(&arena, 0, 0);
    assert_int_equal(parse("version_policy { latest { num_versions: 256 } }", &arena, &c), CELER_OK);
    assert_int_equal(c.latest_num_versions, 256);
    celer_arena_free(&arena);
}

/* celer_path_inside, the guard of every file a model folder names: inside after symlinks and
 * `..`, or refused with a message that names the file as given and never the folder. */
static void test_path_inside(void **state) {
    (void)state;
    char dir[] = "/tmp/celer_paths_XXXXXX";
    assert_non_null(mkdtemp(dir));
    put_file(dir, "secret.txt", 3);
    put_file(dir, "m/config.pbtxt", 3);
    put_file(dir, "m/1/model.onnx", 3);
    put_dir(dir, "outside_version");
    put_file(dir, "outside_version/model.onnx", 3);
    char p[4200], target[4200], root[4200], out[PATH_MAX], want[PATH_MAX];
    snprintf(root, sizeof root, "%s/m", dir);
    struct {
        const char *link, *target;
    } links[] = {{"m/escape.pbtxt", "../secret.txt"},  {"m/alias.pbtxt", "config.pbtxt"},
                 {"m/2", "../outside_version"},        {"m/3", "1"},
                 {"m/loop", "loop"},                   {"m_link", "m"}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(links); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, links[i].link);
        assert_int_equal(symlink(links[i].target, p), 0);
    }
    snprintf(p, sizeof p, "%s/m/abs.pbtxt", dir);
    snprintf(target, sizeof target, "%s/secret.txt", dir);
    assert_int_equal(symlink(target, p), 0);

    assert_non_null(realpath(root, want));
    strcat(want, "/config.pbtxt");
    assert_int_equal(celer_path_inside(root, "config.pbtxt", out, sizeof out), CELER_OK);
    assert_string_equal(out, want);
    assert_int_equal(celer_path_inside(root, "alias.pbtxt", out, sizeof out), CELER_OK);
    assert_string_equal(out, want);
    assert_int_equal(celer_path_inside(root, "1/../config.pbtxt", out, sizeof out), CELER_OK);
    assert_string_equal(out, want);
    assert_int_equal(celer_path_inside(root, "3/model.onnx", out, sizeof out), CELER_OK);
    /* a root reached through a symlink: its files are inside it */
    snprintf(p, sizeof p, "%s/m_link", dir);
    assert_int_equal(celer_path_inside(p, "config.pbtxt", out, sizeof out), CELER_OK);
    assert_string_equal(out, want);
    assert_int_equal(celer_path_inside(dir, "m_link", out, sizeof out), CELER_OK);

    static const struct {
        const char *name;
        celer_status st;
        const char *substr;
    } bad[] = {
        {"/etc/passwd", CELER_ERR_INVALID, "an absolute path is refused"},
        {"", CELER_ERR_INVALID, "an empty name"},
        {"../secret.txt", CELER_ERR_INVALID, "'../secret.txt' resolves outside its folder"},
        {"1/../../secret.txt", CELER_ERR_INVALID, "resolves outside"},
        {"escape.pbtxt", CELER_ERR_INVALID, "'escape.pbtxt' resolves outside"},
        {"abs.pbtxt", CELER_ERR_INVALID, "'abs.pbtxt' resolves outside"},
        {"2/model.onnx", CELER_ERR_INVALID, "'2/model.onnx' resolves outside"}, /* a version folder linked out */
        {".", CELER_ERR_INVALID, "resolves outside"},                           /* the folder itself */
        {"1/..", CELER_ERR_INVALID, "resolves outside"},
        {"absent.txt", CELER_ERR_NOT_FOUND, "'absent.txt' not found"},
        {"config.pbtxt/x", CELER_ERR_NOT_FOUND, "not found"},
        {"loop", CELER_ERR_IO, "'loop'"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_status st = celer_path_inside(root, bad[i].name, out, sizeof out);
        const char *msg = celer_error_message();
        if (st != bad[i].st || !strstr(msg, bad[i].substr) || strstr(msg, dir))
            fail_msg("'%s': got %d '%s', want %d with '%s' and not '%s'", bad[i].name, st, msg, bad[i].st,
                     bad[i].substr, dir);
    }
    /* an output buffer too small is an error, not a truncated path */
    assert_int_equal(celer_path_inside(root, "config.pbtxt", out, 8), CELER_ERR_IO);
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* A repository scanned and completed end to end from the example model. */
static void test_repo_with_example(void **state) {
    (void)state;
    char dir[] = "/tmp/celer_repo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[4200];
    snprintf(p, sizeof p, "%s/mlp", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/mlp/1", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/mlp/1/model.onnx", dir);
    char target[PATH_MAX];
    assert_non_null(realpath(examples_path("mlp/model.onnx"), target));
    assert_int_equal(symlink(target, p), 0);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_repo_model *models;
    int n;
    assert_int_equal(celer_repo_scan(dir, &arena, &models, &n), CELER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(models[0].n_versions, 1);
    assert_true(models[0].versions[0].bytes > 100); /* the symlink's target */
    celer_model *m = load(models[0].versions[0].path);
    celer_model_config c;
    memset(&c, 0, sizeof c);
    assert_int_equal(celer_config_complete(&c, models[0].name, m, 4, &arena), CELER_OK);
    assert_int_equal(c.max_batch_size, 4);
    celer_model_free(m);
    celer_arena_free(&arena);
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_resnet),
        cmocka_unit_test(test_parse_specific),
        cmocka_unit_test(test_parse_params_and_unknown),
        cmocka_unit_test(test_parse_misc),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_truncations_and_mutations),
        cmocka_unit_test(test_complete_mlp),
        cmocka_unit_test(test_complete_mismatches),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_config),
        cmocka_unit_test(test_repo_scan),
        cmocka_unit_test(test_repo_version_cap),
        cmocka_unit_test(test_path_inside),
        cmocka_unit_test(test_repo_with_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
