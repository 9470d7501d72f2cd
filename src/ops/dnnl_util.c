/* Shared oneDNN helpers: engine singleton, error text, primitive bundles. */
#include "dnnl_util.h"

#include <dnnl_debug.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_status_t engine_status;

static void engine_create(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

celer_status celer_dnnl_engine(dnnl_engine_t *out) {
    pthread_once(&engine_once, engine_create);
    if (engine_status != dnnl_success)
        return celer_errorf(CELER_ERR_INTERNAL, "oneDNN: cannot create the CPU engine: %s",
                            dnnl_status2str(engine_status));
    *out = engine;
    return CELER_OK;
}

celer_status celer_dnnl_check(dnnl_status_t s, const char *who, const char *what) {
    if (s == dnnl_success) return CELER_OK;
    celer_status code = s == dnnl_out_of_memory ? CELER_ERR_NOMEM
                        : s == dnnl_unimplemented ? CELER_ERR_UNSUPPORTED
                                                  : CELER_ERR_INTERNAL;
    return celer_errorf(code, "%s: oneDNN %s failed: %s", who, what, dnnl_status2str(s));
}

void celer_dnnl_conv_dims_of(const celer_conv_geom *g, celer_dnnl_conv_dims *d) {
    const celer_window *v = &g->win;
    int nsp = v->nsp, first = 3 - nsp; /* the window keeps spatial dims right-aligned in 3 slots */
    d->rank = nsp + 2;
    d->x[0] = d->y[0] = g->n;
    d->x[1] = g->c;
    d->y[1] = g->m;
    for (int i = 0; i < nsp; i++) {
        d->x[2 + i] = v->in[first + i];
        d->y[2 + i] = v->out[first + i];
        d->strides[i] = v->stride[first + i];
        d->dil[i] = v->dil[first + i] - 1;
        d->pad_l[i] = v->pad_l[first + i];
        d->pad_r[i] = v->pad_r[first + i];
    }
    int wr = 0;
    if (g->group > 1) d->w[wr++] = g->group;
    d->w[wr++] = g->m / g->group;
    d->w[wr++] = g->c / g->group;
    for (int i = 0; i < nsp; i++) d->w[wr++] = v->k[first + i];
    d->w_rank = wr;
}

celer_status celer_dnnl_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims,
                           dnnl_data_type_t dt, dnnl_format_tag_t tag, const char *who) {
    dnnl_dims_t d;
    if (rank < 1 || rank > 6)
        return celer_errorf(CELER_ERR_INTERNAL, "%s: oneDNN descriptor of rank %d", who, rank);
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    return celer_dnnl_check(dnnl_memory_desc_init_by_tag(md, rank, d, dt, tag), who,
                            "memory descriptor");
}

celer_status celer_dnnl_prim_create(celer_dnnl_prim *p, const void *op_desc, bool has_bias,
                                    const_dnnl_post_ops_t post_ops, bool layouts_only, const char *who) {
    memset(p, 0, sizeof *p);
    dnnl_engine_t eng = NULL;
    celer_status st = celer_dnnl_engine(&eng);
    if (st) return st;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if ((st = celer_dnnl_check(dnnl_primitive_attr_create(&attr), who, "attribute creation")))
        return st;
    st = celer_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                          who, "scratchpad mode");
    if (!st && post_ops)
        st = celer_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, post_ops), who, "post-ops");
    if (!st)
        st = celer_dnnl_check(dnnl_primitive_desc_create(&pd, op_desc, attr, eng, NULL), who,
                              "primitive descriptor creation");
    dnnl_primitive_attr_destroy(attr);
    if (st) return st;

    const dnnl_memory_desc_t *scratch_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *weights_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (src_md) p->src_md = *src_md;
    if (weights_md) p->weights_md = *weights_md; /* none for pooling */
    if (dst_md) p->dst_md = *dst_md;
    const dnnl_memory_desc_t *bias_md = has_bias ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1) : NULL;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(p->impl, sizeof p->impl, "%s", impl);
    p->scratch_bytes = scratch_md ? dnnl_memory_desc_get_size(scratch_md) : 0;
    if (layouts_only) {
        dnnl_primitive_desc_destroy(pd);
        return CELER_OK;
    }
    st = celer_dnnl_check(dnnl_primitive_create(&p->prim, pd), who, "primitive creation");
    if (!st) st = celer_dnnl_check(dnnl_memory_create(&p->src, &p->src_md, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st && weights_md)
        st = celer_dnnl_check(dnnl_memory_create(&p->weights, &p->weights_md, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st && bias_md) st = celer_dnnl_check(dnnl_memory_create(&p->bias, bias_md, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st) st = celer_dnnl_check(dnnl_memory_create(&p->dst, &p->dst_md, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st && p->scratch_bytes)
        st = celer_dnnl_check(dnnl_memory_create(&p->scratch, scratch_md, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st) st = celer_dnnl_check(dnnl_stream_create(&p->stream, eng, dnnl_stream_default_flags), who, "stream creation");
    dnnl_primitive_desc_destroy(pd);
    if (st) celer_dnnl_prim_destroy(p);
    return st;
}

celer_status celer_dnnl_prim_run(const celer_dnnl_prim *p, const void *src, const void *weights,
                                 const void *bias, void *dst, void *scratch, const char *who) {
    /* oneDNN takes non-const handles; it only reads src, weights and bias */
    struct { dnnl_memory_t mem; int arg; void *data; } bind[] = {
        {p->src, DNNL_ARG_SRC, (void *)src},       {p->weights, DNNL_ARG_WEIGHTS, (void *)weights},
        {p->bias, DNNL_ARG_BIAS, (void *)bias},    {p->dst, DNNL_ARG_DST, dst},
        {p->scratch, DNNL_ARG_SCRATCHPAD, scratch},
    };
    dnnl_exec_arg_t args[CELER_ARRAY_LEN(bind)];
    int n = 0;
    for (size_t i = 0; i < CELER_ARRAY_LEN(bind); i++) {
        if (!bind[i].mem) continue;
        celer_status st = celer_dnnl_check(dnnl_memory_set_data_handle(bind[i].mem, bind[i].data),
                                           who, "binding a buffer");
        if (st) return st;
        args[n].arg = bind[i].arg;
        args[n].memory = bind[i].mem;
        n++;
    }
    celer_status st = celer_dnnl_check(dnnl_primitive_execute(p->prim, p->stream, n, args), who,
                                       "execution");
    if (!st) st = celer_dnnl_check(dnnl_stream_wait(p->stream), who, "stream wait");
    return st;
}

void celer_dnnl_prim_destroy(celer_dnnl_prim *p) {
    dnnl_memory_t mems[] = {p->src, p->weights, p->bias, p->dst, p->scratch};
    for (size_t i = 0; i < CELER_ARRAY_LEN(mems); i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->stream) dnnl_stream_destroy(p->stream);
    memset(p, 0, sizeof *p);
}

celer_status celer_dnnl_reorder_create(celer_dnnl_reorder *r, const dnnl_memory_desc_t *from,
                                       const dnnl_memory_desc_t *to, const char *who) {
    memset(r, 0, sizeof *r);
    dnnl_engine_t eng = NULL;
    celer_status st = celer_dnnl_engine(&eng);
    if (st) return st;
    dnnl_primitive_desc_t pd = NULL;
    if ((st = celer_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL), who,
                               "reorder descriptor")))
        return st;
    st = celer_dnnl_check(dnnl_primitive_create(&r->prim, pd), who, "reorder creation");
    dnnl_primitive_desc_destroy(pd);
    if (!st) st = celer_dnnl_check(dnnl_memory_create(&r->from, from, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st) st = celer_dnnl_check(dnnl_memory_create(&r->to, to, eng, DNNL_MEMORY_NONE), who, "memory");
    if (!st) st = celer_dnnl_check(dnnl_stream_create(&r->stream, eng, dnnl_stream_default_flags), who, "stream creation");
    if (st) celer_dnnl_reorder_destroy(r);
    return st;
}

celer_status celer_dnnl_reorder_run(const celer_dnnl_reorder *r, const void *src, void *dst, const char *who) {
    celer_status st;
    if ((st = celer_dnnl_check(dnnl_memory_set_data_handle(r->from, (void *)src), who, "binding a buffer")) ||
        (st = celer_dnnl_check(dnnl_memory_set_data_handle(r->to, dst), who, "binding a buffer")))
        return st;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, r->from}, {DNNL_ARG_TO, r->to}};
    if ((st = celer_dnnl_check(dnnl_primitive_execute(r->prim, r->stream, 2, args), who, "reorder")))
        return st;
    return celer_dnnl_check(dnnl_stream_wait(r->stream), who, "stream wait");
}

void celer_dnnl_reorder_destroy(celer_dnnl_reorder *r) {
    if (r->from) dnnl_memory_destroy(r->from);
    if (r->to) dnnl_memory_destroy(r->to);
    if (r->prim) dnnl_primitive_destroy(r->prim);
    if (r->stream) dnnl_stream_destroy(r->stream);
    memset(r, 0, sizeof *r);
}
