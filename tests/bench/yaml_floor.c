/* The least a plan built on libyaml can take: libyaml's event parse of every
 * blob of a `git cat-file --batch` stream, on one thread per core, and
 * nothing else (no validation, no canonical JSON, no tree, no output).
 * ci/bench sets it beside the cat-file floor, so that a ratio goal can be
 * read against what no change to ota-runner's own code can remove.
 *
 *   yaml_floor BATCH-FILE THREADS
 *
 * Prints "DOCS EVENTS MS": the documents and events parsed and the wall
 * milliseconds of the parse (the file is read into memory first). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

typedef struct blob {
    const unsigned char *data;
    size_t len;
} blob;

typedef struct worker {
    pthread_t thread;
    const blob *blobs;
    size_t first, count, step;
    long docs, events;
    int failed;
} worker;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Every event of one blob; -1 when libyaml refuses it. */
static int parse_blob(const blob *b, long *events)
{
    yaml_parser_t parser;
    yaml_event_t event;
    int rc = 0;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, b->data, b->len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &event)) {
            rc = -1;
            break;
        }
        int end = event.type == YAML_STREAM_END_EVENT;
        ++*events;
        yaml_event_delete(&event);
        if (end)
            break;
    }
    yaml_parser_delete(&parser);
    return rc;
}

static void *run(void *arg)
{
    worker *w = arg;
    for (size_t i = w->first; i < w->count; i += w->step) {
        if (parse_blob(&w->blobs[i], &w->events) < 0)
            w->failed = 1;
        w->docs++;
    }
    return NULL;
}

/* The blobs of a cat-file --batch stream: "OID TYPE SIZE\n", SIZE bytes, "\n". */
static blob *split_batch(unsigned char *text, size_t len, size_t *count)
{
    size_t n = 0, cap = 1024;
    blob *blobs = malloc(cap * sizeof(*blobs));
    unsigned char *p = text, *end = text + len;
    while (blobs && p < end) {
        unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        *nl = '\0';
        const char *size = strrchr((const char *)p, ' ');
        size_t sz = size ? strtoul(size + 1, NULL, 10) : 0;
        if (!size || sz > (size_t)(end - nl - 1)) {
            free(blobs);
            return NULL;
        }
        if (n == cap) {
            blob *more = realloc(blobs, (cap *= 2) * sizeof(*blobs));
            if (!more) {
                free(blobs);
                return NULL;
            }
            blobs = more;
        }
        blobs[n++] = (blob){nl + 1, sz};
        p = nl + 1 + sz + 1;
    }
    *count = n;
    return blobs;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *text = NULL;
    long size;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)size + 1)) && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    fclose(f);
    *len = text ? (size_t)size : 0;
    return text;
}

int main(int argc, char **argv)
{
    size_t len = 0, count = 0;
    int threads = argc == 3 ? atoi(argv[2]) : 0;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: yaml_floor BATCH-FILE THREADS\n");
        return 2;
    }
    unsigned char *text = read_all(argv[1], &len);
    blob *blobs = text ? split_batch(text, len, &count) : NULL;
    worker *w = calloc((size_t)threads, sizeof(*w));
    if (!blobs || !w) {
        fprintf(stderr, "yaml_floor: cannot read %s as a cat-file --batch stream\n", argv[1]);
        return 2;
    }
    double t0 = now_ms();
    for (int t = 0; t < threads; t++) {
        w[t] =
            (worker){.blobs = blobs, .first = (size_t)t, .count = count, .step = (size_t)threads};
        if (pthread_create(&w[t].thread, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "yaml_floor: cannot start a thread\n");
            return 2;
        }
    }
    long docs = 0, events = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(w[t].thread, NULL);
        docs += w[t].docs;
        events += w[t].events;
        failed |= w[t].failed;
    }
    printf("%ld %ld %.1f\n", docs, events, now_ms() - t0);
    free(w);
    free(blobs);
    free(text);
    return failed ? 1 : 0;
}
