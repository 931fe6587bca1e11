/*
 * libcurl, loaded by the first call that needs it: the functions of its API
 * that ota-runner calls, each handing on to libcurl.so.4 opened with dlopen.
 * Linked, libcurl and the 28 libraries it brings (TLS, LDAP, Kerberos, RTMP,
 * SSH, GnuTLS's constructor...) were mapped and relocated at every start:
 * 8 ms of each command, a tenth of a 1k plan, while validate, tokens, diff
 * and a plan that asks the service nothing never send a request.
 *
 * Once loaded, curl_global_init(CURL_GLOBAL_DEFAULT) has run (once, under
 * pthread_once: libcurl's own is thread-safe since 7.84 anyway). Without the
 * library every call fails as libcurl fails (NULL, CURLE_FAILED_INIT,
 * CURLUE_OUT_OF_MEMORY) after one message that says what to install.
 */
#define CURL_DISABLE_TYPECHECK /* the forwarders below take the options as they come */
#include <curl/curl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* The runtime library of the package we build against (libcurl4, OpenSSL). */
#define CURL_LIBRARY "libcurl.so.4"

#define CURL_FUNCTIONS(X)                                                                          \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_escape)                                                                            \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_strerror)                                                                          \
    X(curl_free)                                                                                   \
    X(curl_getdate)                                                                                \
    X(curl_global_cleanup)                                                                         \
    X(curl_global_init)                                                                            \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_info_read)                                                                        \
    X(curl_multi_init)                                                                             \
    X(curl_multi_perform)                                                                          \
    X(curl_multi_poll)                                                                             \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_setopt)                                                                           \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_url)                                                                                    \
    X(curl_url_cleanup)                                                                            \
    X(curl_url_get)                                                                                \
    X(curl_url_set)                                                                                \
    X(curl_version_info)

#define DECLARE(f) __typeof__(f) *f;
static struct {
    CURL_FUNCTIONS(DECLARE)
} lib;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;

static void load(void)
{
    void *h = dlopen(CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    const char *missing = NULL;
    if (!h) {
        fprintf(stderr, "ota-runner: error: cannot load %s (%s): install libcurl4\n", CURL_LIBRARY,
                dlerror());
        return;
    }
    /* (POSIX: a function's address is read through a void pointer) */
#define FIND(f)                                                                                    \
    if (!missing && !(*(void **)&lib.f = dlsym(h, #f)))                                            \
        missing = #f;
    CURL_FUNCTIONS(FIND)
#undef FIND
    if (missing) {
        fprintf(stderr, "ota-runner: error: %s has no %s: install libcurl4 7.88 or later\n",
                CURL_LIBRARY, missing);
        return;
    }
    if (lib.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "ota-runner: error: libcurl could not start (curl_global_init)\n");
        return;
    }
    loaded = 1;
}

static int ready(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

/* curl_easy_setopt and curl_multi_setopt take one more argument, whose type
 * the option's number says (CURLOPTTYPE_*; multi's are numbered alike): a
 * long, a function, a curl_off_t, else a pointer (object, string, list,
 * blob). One of them, read from ap. */
typedef struct option_arg {
    enum { ARG_LONG, ARG_FUNCTION, ARG_OFF_T, ARG_POINTER } type;
    long l;
    void (*function)(void);
    curl_off_t off;
    void *pointer;
} option_arg;

static option_arg option_arg_of(long option, va_list *ap)
{
    option_arg a = {ARG_POINTER, 0, NULL, 0, NULL};
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        a.type = ARG_LONG;
        a.l = va_arg(*ap, long);
    } else if (option >= CURLOPTTYPE_FUNCTIONPOINT && option < CURLOPTTYPE_OFF_T) {
        a.type = ARG_FUNCTION;
        a.function = va_arg(*ap, void (*)(void));
    } else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB) {
        a.type = ARG_OFF_T;
        a.off = va_arg(*ap, curl_off_t);
    } else {
        a.pointer = va_arg(*ap, void *);
    }
    return a;
}

/* curl_easy_setopt and curl_multi_setopt: the same forwarder for a handle,
 * an option and a result of each API's types; failed without the library. */
#define DEFINE_SETOPT(fn, handle_t, option_t, code_t, failed)                                      \
    code_t fn(handle_t *handle, option_t option, ...)                                              \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, option);                                                                      \
        option_arg a = option_arg_of((long)option, &ap);                                           \
        va_end(ap);                                                                                \
        if (!ready())                                                                              \
            return failed;                                                                         \
        switch (a.type) {                                                                          \
        case ARG_LONG: return lib.fn(handle, option, a.l);                                         \
        case ARG_FUNCTION: return lib.fn(handle, option, a.function);                              \
        case ARG_OFF_T: return lib.fn(handle, option, a.off);                                      \
        default: return lib.fn(handle, option, a.pointer);                                         \
        }                                                                                          \
    }

DEFINE_SETOPT(curl_easy_setopt, CURL, CURLoption, CURLcode, CURLE_FAILED_INIT)
DEFINE_SETOPT(curl_multi_setopt, CURLM, CURLMoption, CURLMcode, CURLM_INTERNAL_ERROR)

CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    va_list ap;
    va_start(ap, info);
    CURLcode rc =
        ready() ? lib.curl_easy_getinfo(curl, info, va_arg(ap, void *)) : CURLE_FAILED_INIT;
    va_end(ap);
    return rc;
}

CURLcode curl_global_init(long flags)
{
    (void)flags; /* loading runs it, with CURL_GLOBAL_DEFAULT */
    return ready() ? CURLE_OK : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
    if (loaded) /* never loaded: nothing to clean up, nothing to load */
        lib.curl_global_cleanup();
}

CURL *curl_easy_init(void)
{
    return ready() ? lib.curl_easy_init() : NULL;
}

void curl_easy_cleanup(CURL *curl)
{
    if (curl && ready())
        lib.curl_easy_cleanup(curl);
}

CURLcode curl_easy_perform(CURL *curl)
{
    return ready() ? lib.curl_easy_perform(curl) : CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(CURLcode code)
{
    return ready() ? lib.curl_easy_strerror(code) : "libcurl could not be loaded";
}

char *curl_easy_escape(CURL *curl, const char *string, int length)
{
    return ready() ? lib.curl_easy_escape(curl, string, length) : NULL;
}

void curl_free(void *p)
{
    if (p && ready())
        lib.curl_free(p);
}

time_t curl_getdate(const char *p, const time_t *unused)
{
    return ready() ? lib.curl_getdate(p, unused) : -1;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *data)
{
    return ready() ? lib.curl_slist_append(list, data) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    if (list && ready())
        lib.curl_slist_free_all(list);
}

CURLM *curl_multi_init(void)
{
    return ready() ? lib.curl_multi_init() : NULL;
}

CURLMcode curl_multi_add_handle(CURLM *multi, CURL *curl)
{
    return ready() ? lib.curl_multi_add_handle(multi, curl) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *multi, CURL *curl)
{
    return ready() ? lib.curl_multi_remove_handle(multi, curl) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_perform(CURLM *multi, int *running)
{
    return ready() ? lib.curl_multi_perform(multi, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_poll(CURLM *multi, struct curl_waitfd extra[], unsigned int nextra,
                          int timeout_ms, int *numfds)
{
    return ready() ? lib.curl_multi_poll(multi, extra, nextra, timeout_ms, numfds)
                   : CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *multi, int *left)
{
    return ready() ? lib.curl_multi_info_read(multi, left) : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *multi)
{
    return multi && ready() ? lib.curl_multi_cleanup(multi) : CURLM_OK;
}

CURLU *curl_url(void)
{
    return ready() ? lib.curl_url() : NULL;
}

void curl_url_cleanup(CURLU *url)
{
    if (url && ready())
        lib.curl_url_cleanup(url);
}

CURLUcode curl_url_get(CURLU *url, CURLUPart what, char **part, unsigned int flags)
{
    return ready() ? lib.curl_url_get(url, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode curl_url_set(CURLU *url, CURLUPart what, const char *part, unsigned int flags)
{
    return ready() ? lib.curl_url_set(url, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

curl_version_info_data *curl_version_info(CURLversion version)
{
    return ready() ? lib.curl_version_info(version) : NULL;
}
