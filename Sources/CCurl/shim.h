// libcurl for Swift: curl_easy_setopt and friends are variadic, which Swift cannot call, so
// each type of argument gets a small typed wrapper; macros Swift does not import get constants.
#ifndef SAGE_CCURL_SHIM_H
#define SAGE_CCURL_SHIM_H
#include <curl/curl.h>

static inline CURLcode sage_curl_global_init(void) { return curl_global_init(CURL_GLOBAL_ALL); }

static inline CURLcode sage_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode sage_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode sage_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode sage_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode sage_curl_setopt_list(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode sage_curl_setopt_write(CURL *handle, CURLoption option, curl_write_callback value) {
    return curl_easy_setopt(handle, option, value);
}
typedef int (*sage_curl_prereq_callback)(void *data, char *primary_ip, char *local_ip, int primary_port, int local_port);
static inline CURLcode sage_curl_setopt_prereq(CURL *handle, sage_curl_prereq_callback value) {
    return curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, value);
}
static inline CURLcode sage_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode sage_curl_getinfo_pointer(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLMcode sage_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}
static inline CURLcode sage_curl_message_result(CURLMsg *message) { return message->data.result; }

static const size_t SAGE_CURL_WRITEFUNC_PAUSE = CURL_WRITEFUNC_PAUSE;
static const int SAGE_CURLPAUSE_CONT = CURLPAUSE_CONT;
static const long SAGE_CURL_HTTP_VERSION_2TLS = CURL_HTTP_VERSION_2TLS;
#endif
