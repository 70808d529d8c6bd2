#include "estlab/core/verify.hpp"

#include "estlab/core/oids.hpp"

namespace estlab {
namespace {

// RFC 5280 4.1.2.5: notAfter itself is inside the validity period; OpenSSL counts it as expired.
// A C callback: it must not throw.
int inclusive_not_after(int ok, X509_STORE_CTX* ctx) noexcept {
  if (ok == 0 && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_HAS_EXPIRED) {
    X509* cert = X509_STORE_CTX_get_current_cert(ctx);
    time_t at = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
    if (cert != nullptr && ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), at) == 0) {
      X509_STORE_CTX_set_error(ctx, X509_V_OK);
      return 1;
    }
  }
  return ok;
}

}  // namespace

Result<PathVerdict> validate_path(const Certificate& leaf, const PathValidation& options) {
  ossl::ErrorQueueGuard guard;
  ossl::X509Store store(X509_STORE_new());
  if (!store) return ossl::error(ErrorCode::internal, "path validation: X509_STORE_new failed");
  for (const auto& anchor : options.trust_anchors) X509_STORE_add_cert(store.get(), anchor.native());
  for (const auto& crl : options.crls) X509_STORE_add_crl(store.get(), crl.native());

  ossl::X509Stack untrusted(sk_X509_new_null());
  for (const auto& cert : options.intermediates) {
    X509_up_ref(cert.native());
    sk_X509_push(untrusted.get(), cert.native());  // the stack owns this reference
  }

  ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf.native(), untrusted.get()) != 1) {
    return ossl::error(ErrorCode::internal, "path validation: cannot initialise the verifier");
  }
  X509_STORE_CTX_set_verify_cb(ctx.get(), inclusive_not_after);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(options.at));
  unsigned long flags = options.strict ? X509_V_FLAG_X509_STRICT : 0;
  if (options.purpose) {
    int index = X509_PURPOSE_get_by_sname(options.purpose->c_str());
    if (index < 0) return make_error(ErrorCode::invalid_input, "path validation: unknown purpose '" + *options.purpose + "'");
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_get_id(X509_PURPOSE_get0(index)));
  }
  if (options.revocation == RevocationCheck::leaf) flags |= X509_V_FLAG_CRL_CHECK;
  if (options.revocation == RevocationCheck::whole_chain) flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  X509_VERIFY_PARAM_set_flags(param, flags);

  PathVerdict verdict;
  int rc = X509_verify_cert(ctx.get());
  if (rc == 1) {
    verdict.valid = true;
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
    for (int i = 0; i < sk_X509_num(chain); ++i) verdict.path.push_back(Certificate::borrow_shared(sk_X509_value(chain, i)));
  } else {
    verdict.openssl_code = X509_STORE_CTX_get_error(ctx.get());
    verdict.error_depth = X509_STORE_CTX_get_error_depth(ctx.get());
    verdict.reason = X509_verify_cert_error_string(verdict.openssl_code);
  }

  if (verdict.valid && options.required_eku && !leaf.has_extended_key_usage(*options.required_eku)) {
    verdict.valid = false;
    verdict.path.clear();
    verdict.openssl_code = X509_V_ERR_INVALID_PURPOSE;
    verdict.error_depth = 0;
    verdict.reason = "certificate lacks the extended key usage " + oid::short_name(oid::to_dotted(*options.required_eku));
  }
  return verdict;
}

}  // namespace estlab
