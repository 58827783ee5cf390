#ifndef POOLER_COPENSSL_SHIM_H
#define POOLER_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/md5.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/objects.h>
#include <openssl/bio.h>

/* Helpers for the TLS layer (Sources/PoolerIO/TLS): OpenSSL macros that Swift
   cannot import, wrapped as static inline functions. */

static inline int pooler_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int pooler_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long pooler_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long pooler_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline int pooler_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}
static inline int pooler_SSL_CTX_set_dh_auto(SSL_CTX *ctx, int onoff) {
    return (int)SSL_CTX_set_dh_auto(ctx, onoff);
}
static inline int pooler_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline void pooler_BIO_set_mem_eof_return(BIO *bio, int value) {
    (void)BIO_set_mem_eof_return(bio, value);
}
static inline void pooler_OPENSSL_free(void *ptr) {
    OPENSSL_free(ptr);
}
static inline const EVP_MD *pooler_EVP_get_digestbynid(int nid) {
    return EVP_get_digestbynid(nid);
}
/* Options every context gets: no compression, no renegotiation. */
static inline uint64_t pooler_ssl_op_base(void) {
    return (uint64_t)(SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
}
static inline uint64_t pooler_ssl_op_no_ticket(void) { return (uint64_t)SSL_OP_NO_TICKET; }
static inline uint64_t pooler_ssl_op_cipher_server_preference(void) {
    return (uint64_t)SSL_OP_CIPHER_SERVER_PREFERENCE;
}
static inline uint64_t pooler_ssl_op_no_tlsv1(void) { return (uint64_t)SSL_OP_NO_TLSv1; }
static inline uint64_t pooler_ssl_op_no_tlsv1_1(void) { return (uint64_t)SSL_OP_NO_TLSv1_1; }
static inline uint64_t pooler_ssl_op_no_tlsv1_2(void) { return (uint64_t)SSL_OP_NO_TLSv1_2; }
static inline uint64_t pooler_ssl_op_no_tlsv1_3(void) { return (uint64_t)SSL_OP_NO_TLSv1_3; }
#endif
