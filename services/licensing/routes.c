/*
 * The licensing routes, one line per endpoint (API.md, Licensing). Routes flagged public
 * are the product's (Order ID + Fulfillment Number, or the activation secret, as proof;
 * the gateway lets them through without a bearer token) and the mailed links'.
 */
#include "licensing.h"

#define PUB CC_ROUTE_PUBLIC
const cc_route_t lic_routes[] = {
    {"POST", "/api/v1/licensing/activations", lic_handle_activate, PUB, 64 * 1024},
    {"GET", "/api/v1/licensing/activations", lic_handle_activation_list, 0, 0},
    {"POST", "/api/v1/licensing/activations/{id}/check-in", lic_handle_check_in, PUB, 512 * 1024},
    {"DELETE", "/api/v1/licensing/activations/{id}", lic_handle_deactivate, PUB, 4096},
    {"POST", "/api/v1/licensing/activations/{id}/email", lic_handle_email_change, PUB, 4096},
    {"POST", "/api/v1/licensing/offline-requests", lic_handle_offline_request, 0, 64 * 1024},
    {"POST", "/api/v1/licensing/offline-deactivations", lic_handle_offline_deactivation, 0,
     64 * 1024},
    {"POST", "/api/v1/licensing/approvals/{token}", lic_handle_approval, PUB, 4096},
    {"POST", "/api/v1/licensing/orders", lic_handle_order_create, 0, 256 * 1024},
    {"GET", "/api/v1/licensing/orders", lic_handle_order_list, 0, 0},
    {"GET", "/api/v1/licensing/orders/{id}", lic_handle_order_get, 0, 0},
    {"GET", "/api/v1/licensing/pools", lic_handle_pool_list, 0, 0},
    {"POST", "/api/v1/licensing/pools", lic_handle_pool_create, 0, 16 * 1024},
    {"PATCH", "/api/v1/licensing/pools", lic_handle_pool_patch, 0, 16 * 1024},
    {"PATCH", "/api/v1/licensing/pools/{id}", lic_handle_pool_patch, 0, 16 * 1024},
    {"POST", "/api/v1/licensing/pools/{id}/release", lic_handle_pool_release, 0, 4096},
    {"POST", "/api/v1/licensing/activations/{id}/orders", lic_handle_add_order, 0, 4096},
    {"GET", "/api/v1/licensing/activations/{id}/nodes", lic_handle_nodes_list, 0, 0},
    {"POST", "/api/v1/licensing/activations/{id}/nodes/release", lic_handle_nodes_release, 0,
     512 * 1024},
    {"GET", "/api/v1/licensing/usage", lic_handle_usage, 0, 0},
    {"POST", "/api/v1/licensing/keys", lic_handle_keys_create, 0, 16 * 1024},
    {"GET", "/api/v1/licensing/keys", lic_handle_keys_list, 0, 0},
    {"POST", "/api/v1/licensing/keys/verify", lic_handle_keys_verify, 0, 4096},
    {"GET", "/api/v1/licensing/public-key", lic_handle_public_key, PUB, 0},
    {"POST", "/api/v1/licensing/trials", lic_handle_trial, PUB, 4096},
    {"GET", "/licensing/confirm", lic_handle_confirm, PUB, 0},
    {"POST", "/licensing/confirm", lic_handle_confirm_form, PUB, 4096},
    {"GET", "/licensing/approve", lic_handle_approve_page, PUB, 0},
    {"POST", "/licensing/approve", lic_handle_approve_form, PUB, 4096},
};
const size_t lic_nroutes = CC_ARRAY_SIZE(lic_routes);
