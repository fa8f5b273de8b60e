/*
 * Copyright 2026 The AetherScan ROS Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Fused PointCloud2 packer for aetherscan_ros.cloud (optional C extension).
 *
 * One pass over the points writes the 24-byte little-endian layout of aetherscan_ros.cloud
 * (x, y, z, rgb, confidence float32; view uint16; two zero padding bytes) and counts the points
 * with a non-finite coordinate, with the GIL released so that several Python threads can pack
 * disjoint slices of one buffer at once. Only the buffer protocol is used (no numpy headers).
 * When this module is missing, aetherscan_ros.cloud packs with numpy instead (same bytes).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
#error "_cloudpack writes little-endian fields by plain stores: little-endian hosts only"
#endif

#define POINT_STEP 24

/* A float32 is finite when its exponent bits are not all ones. */
static inline uint32_t nonfinite_bits(uint32_t bits)
{
  return (bits & 0x7f800000u) == 0x7f800000u;
}

static inline uint32_t load32(const void * src)
{
  uint32_t value;
  memcpy(&value, src, 4);
  return value;
}

static inline void store64(unsigned char * dst, uint32_t low, uint32_t high)
{
  const uint64_t value = (uint64_t)low | ((uint64_t)high << 32);
  memcpy(dst, &value, 8);
}

/* uint32 0x00RRGGBB (bytes B, G, R, 0 in memory, as RViz reads the rgb field). */
static inline uint32_t rgb_bytes(const unsigned char * c)
{
  return ((uint32_t)c[0] << 16) | ((uint32_t)c[1] << 8) | (uint32_t)c[2];
}

/*
 * Inputs of one packing call. A broadcast confidence or view is a 4-element array read with
 * step 0, so that one loop serves per-point and constant values.
 */
typedef struct
{
  const float * points;         /* [N, 3] */
  const unsigned char * colors; /* [N, 3] RGB */
  const float * conf;           /* [N] (step 1) or 4 copies of one value (step 0) */
  const uint16_t * view;        /* [N] (step 1) or 4 copies of one value (step 0) */
  Py_ssize_t conf_step, view_step;
} Source;

/* Pack points [start, stop) one by one; return how many have a non-finite coordinate. */
static Py_ssize_t pack_scalar(unsigned char * out, const Source * s, Py_ssize_t start,
  Py_ssize_t stop)
{
  Py_ssize_t nonfinite = 0;
  for (Py_ssize_t i = start; i < stop; ++i) {
    unsigned char * row = out + (size_t)i * POINT_STEP;
    const uint32_t x = load32(s->points + 3 * i);
    const uint32_t y = load32(s->points + 3 * i + 1);
    const uint32_t z = load32(s->points + 3 * i + 2);
    nonfinite += nonfinite_bits(x) | nonfinite_bits(y) | nonfinite_bits(z);
    /* Three 8-byte stores straight into the row (staging the row on the stack and copying it
     * out costs a store-forwarding stall per point). View in bytes 20-21, zero padding in
     * 22-23 (where the chunk marker field points). */
    store64(row, x, y);
    store64(row + 8, z, rgb_bytes(s->colors + 3 * i));
    store64(row + 16, load32(s->conf + i * s->conf_step), s->view[i * s->view_step]);
  }
  return nonfinite;
}

#if defined(__SSE2__)
#include <emmintrin.h>

#define SEL(a0, a1, b0, b1) _MM_SHUFFLE(b1, b0, a1, a0)

/* Four points per step with SSE2 lane shuffles (x86-64 baseline); the tail goes scalar. */
static Py_ssize_t pack_points(unsigned char * out, const Source * s, Py_ssize_t n)
{
  const __m128i exponent = _mm_set1_epi32(0x7f800000);
  Py_ssize_t nonfinite = 0;
  Py_ssize_t i = 0;
  /* i + 4 < n: the 4-byte color load of the fourth point reads one byte past it. */
  for (; i + 4 < n; i += 4) {
    const float * p = s->points + 3 * i;
    const __m128 p0 = _mm_loadu_ps(p);      /* x0 y0 z0 x1 */
    const __m128 p1 = _mm_loadu_ps(p + 4);  /* y1 z1 x2 y2 */
    const __m128 p2 = _mm_loadu_ps(p + 8);  /* z2 x3 y3 z3 */
    const __m128i bad = _mm_or_si128(
      _mm_or_si128(
        _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(p0), exponent), exponent),
        _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(p1), exponent), exponent)),
      _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(p2), exponent), exponent));
    if (_mm_movemask_epi8(bad)) {
      for (Py_ssize_t k = 3 * i; k < 3 * i + 12; k += 3) {
        nonfinite += nonfinite_bits(load32(s->points + k)) |
          nonfinite_bits(load32(s->points + k + 1)) | nonfinite_bits(load32(s->points + k + 2));
      }
    }
    /* Bytes R G B (next R) as big endian, shifted right by 8: 0x00RRGGBB. */
    const unsigned char * c = s->colors + 3 * i;
    const __m128 rgb = _mm_castsi128_ps(_mm_set_epi32(
        (int)(__builtin_bswap32(load32(c + 9)) >> 8), (int)(__builtin_bswap32(load32(c + 6)) >> 8),
        (int)(__builtin_bswap32(load32(c + 3)) >> 8), (int)(__builtin_bswap32(load32(c)) >> 8)));
    const __m128 conf = _mm_loadu_ps(s->conf + i * s->conf_step);
    const __m128 view = _mm_castsi128_ps(_mm_unpacklo_epi16(
        _mm_loadl_epi64((const __m128i *)(s->view + i * s->view_step)), _mm_setzero_si128()));
    const __m128 cv_lo = _mm_unpacklo_ps(conf, view);  /* c0 v0 c1 v1 */
    const __m128 cv_hi = _mm_unpackhi_ps(conf, view);  /* c2 v2 c3 v3 */
    float * o = (float *)(out + (size_t)i * POINT_STEP);
    /* x0 y0 z0 rgb0 | c0 v0 x1 y1 | z1 rgb1 c1 v1 | x2 y2 z2 rgb2 | c2 v2 x3 y3 | z3 rgb3 c3 v3 */
    _mm_storeu_ps(o, _mm_shuffle_ps(p0, _mm_shuffle_ps(p0, rgb, SEL(2, 2, 0, 0)),
      SEL(0, 1, 0, 2)));
    _mm_storeu_ps(o + 4, _mm_shuffle_ps(cv_lo, _mm_shuffle_ps(p0, p1, SEL(3, 3, 0, 0)),
      SEL(0, 1, 0, 2)));
    _mm_storeu_ps(o + 8, _mm_shuffle_ps(_mm_shuffle_ps(p1, rgb, SEL(1, 1, 1, 1)), cv_lo,
      SEL(0, 2, 2, 3)));
    _mm_storeu_ps(o + 12, _mm_shuffle_ps(p1, _mm_shuffle_ps(p2, rgb, SEL(0, 0, 2, 2)),
      SEL(2, 3, 0, 2)));
    _mm_storeu_ps(o + 16, _mm_shuffle_ps(cv_hi, p2, SEL(0, 1, 1, 2)));
    _mm_storeu_ps(o + 20, _mm_shuffle_ps(_mm_shuffle_ps(p2, rgb, SEL(3, 3, 3, 3)), cv_hi,
      SEL(0, 2, 2, 3)));
  }
  return nonfinite + pack_scalar(out, s, i, n);
}
#else
static Py_ssize_t pack_points(unsigned char * out, const Source * s, Py_ssize_t n)
{
  return pack_scalar(out, s, 0, n);
}
#endif

/* Take a contiguous read-only buffer of exactly `nbytes`, or raise naming `what`. */
static int get_input(PyObject * obj, Py_buffer * buf, Py_ssize_t nbytes, const char * what)
{
  if (PyObject_GetBuffer(obj, buf, PyBUF_C_CONTIGUOUS) < 0) {
    return -1;
  }
  if (buf->len != nbytes) {
    PyErr_Format(
      PyExc_ValueError, "%s has %zd bytes, expected %zd for the points of the output buffer",
      what, buf->len, nbytes);
    PyBuffer_Release(buf);
    return -1;
  }
  return 0;
}

PyDoc_STRVAR(
  pack_doc,
  "pack(out, points, colors, confidence, view) -> int\n"
  "\n"
  "Write N points into `out` (writable, N * 24 bytes) and return how many have a NaN/inf\n"
  "coordinate. `points` N*3 float32, `colors` N*3 uint8 RGB, both C-contiguous buffers;\n"
  "`confidence` N float32 buffer or a float; `view` N uint16 buffer or an int 0..65535.\n"
  "Native (little-endian) byte order. The GIL is released while packing.");

static PyObject * pack(PyObject * self, PyObject * args)
{
  (void)self;
  PyObject * out_obj, * points_obj, * colors_obj, * conf_obj, * view_obj;
  if (!PyArg_ParseTuple(args, "OOOOO:pack", &out_obj, &points_obj, &colors_obj, &conf_obj,
    &view_obj))
  {
    return NULL;
  }
  Py_buffer out = {0}, points = {0}, colors = {0}, conf = {0}, view = {0};
  int have_conf = 0, have_view = 0;
  float conf_value = 0.0f;
  uint16_t view_value = 0;
  PyObject * result = NULL;

  if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
    return NULL;
  }
  if (out.len % POINT_STEP) {
    PyErr_Format(PyExc_ValueError, "output buffer of %zd bytes is not a multiple of %d",
      out.len, POINT_STEP);
    goto done;
  }
  const Py_ssize_t n = out.len / POINT_STEP;
  if (get_input(points_obj, &points, n * 12, "points") < 0) {
    goto done;
  }
  if (get_input(colors_obj, &colors, n * 3, "colors") < 0) {
    goto done;
  }
  if (PyFloat_Check(conf_obj) || PyLong_Check(conf_obj)) {
    conf_value = (float)PyFloat_AsDouble(conf_obj);
    if (PyErr_Occurred()) {
      goto done;
    }
  } else {
    if (get_input(conf_obj, &conf, n * 4, "confidence") < 0) {
      goto done;
    }
    have_conf = 1;
  }
  if (PyLong_Check(view_obj)) {
    long value = PyLong_AsLong(view_obj);
    if (value == -1 && PyErr_Occurred()) {
      goto done;
    }
    if (value < 0 || value > 0xFFFF) {
      PyErr_Format(PyExc_ValueError, "view %ld is outside 0..65535", value);
      goto done;
    }
    view_value = (uint16_t)value;
  } else {
    if (get_input(view_obj, &view, n * 2, "view") < 0) {
      goto done;
    }
    have_view = 1;
  }

  float conf4[4] = {conf_value, conf_value, conf_value, conf_value};
  uint16_t view4[4] = {view_value, view_value, view_value, view_value};
  const Source source = {
    (const float *)points.buf, (const unsigned char *)colors.buf,
    have_conf ? (const float *)conf.buf : conf4, have_view ? (const uint16_t *)view.buf : view4,
    have_conf ? 1 : 0, have_view ? 1 : 0,
  };
  Py_ssize_t nonfinite;
  Py_BEGIN_ALLOW_THREADS
  nonfinite = pack_points((unsigned char *)out.buf, &source, n);
  Py_END_ALLOW_THREADS
  result = PyLong_FromSsize_t(nonfinite);

done:
  if (view.obj != NULL) {
    PyBuffer_Release(&view);
  }
  if (conf.obj != NULL) {
    PyBuffer_Release(&conf);
  }
  if (colors.obj != NULL) {
    PyBuffer_Release(&colors);
  }
  if (points.obj != NULL) {
    PyBuffer_Release(&points);
  }
  PyBuffer_Release(&out);
  return result;
}

static PyMethodDef methods[] = {
  {"pack", pack, METH_VARARGS, pack_doc},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
  PyModuleDef_HEAD_INIT, "_cloudpack",
  "Fused PointCloud2 packer for aetherscan_ros.cloud (see pack).", -1, methods,
  NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cloudpack(void)
{
  return PyModule_Create(&module);
}
