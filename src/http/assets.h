/*
 * assets.h - files compiled into the binary by cmake/embed.cmake: the
 * OpenAPI spec (api/openapi.json) and the /docs page (api/docs/).
 */
#ifndef FP_ASSETS_H
#define FP_ASSETS_H

#include <stddef.h>

extern const unsigned char asset_openapi_json[];
extern const size_t asset_openapi_json_len;
extern const unsigned char asset_docs_index_html[];
extern const size_t asset_docs_index_html_len;
extern const unsigned char asset_docs_init_js[];
extern const size_t asset_docs_init_js_len;

#endif
