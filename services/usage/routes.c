/*
 * The usage service's endpoints, one line each (handlers in ingest.c, reports.c and
 * billing.c). Ingestion accepts bodies up to 8 MiB (10 000 items).
 */
#include "usage.h"

const cc_route_t usage_routes[] = {
    {"POST", "/api/v1/usage/samples", usage_handle_samples, 0, 8 * 1024 * 1024},
    {"POST", "/api/v1/usage/job-events", usage_handle_job_events, 0, 8 * 1024 * 1024},
    {"GET", "/api/v1/reports/account-details", usage_handle_report, 0, 0},
    {"GET", "/api/v1/reports/jobs-24h", usage_handle_report, 0, 0},
    {"GET", "/api/v1/reports/sources", usage_handle_report, 0, 0},
    {"GET", "/api/v1/reports/protection", usage_handle_report, 0, 0},
    {"GET", "/api/v1/reports/data-transfer", usage_handle_report, 0, 0},
    {"GET", "/api/v1/reports/stored-data", usage_handle_report, 0, 0},
    {"GET", "/api/v1/tenants/{id}/billing-plan", usage_handle_plan_get, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/billing-plan", usage_handle_plan_put, 0, 0},
    {"GET", "/api/v1/billing/export", usage_handle_billing_export, 0, 0},
};
const size_t usage_nroutes = CC_ARRAY_SIZE(usage_routes);
