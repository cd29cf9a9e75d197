// stylize: 2-D convolution on the CPU by bands of output rows.
//
// Stock Caffe lowers a whole image with im2col before one GEMM: for VGG's
// conv1_2 at 512x512 px that writes a 604 MB column matrix, which the GEMM
// then reads back from main memory, and col2im does the same in backward.
// Done a band of output rows at a time, the columns of a band (about
// kBandBytes) are still in cache when the GEMM reads them, the column buffer
// shrinks from the largest layer's whole image to one band, and results are
// the same sums of the same products (the GEMMs just see fewer columns).
//
// Installed by scripts/install_pycaffe.py into include/caffe/util/ and used
// by BaseConvolutionLayer for ungrouped 2-D convolutions (see PATCHES there).
#ifndef CAFFE_UTIL_CONV_BANDS_HPP_
#define CAFFE_UTIL_CONV_BANDS_HPP_

#include <algorithm>
#include <cstddef>

#include "caffe/util/mkl_alternate.hpp"  // cblas

namespace caffe {
namespace conv_bands {

// A band is the fewest whole output rows that give the GEMM at least
// kMinColumns columns (fewer, and OpenBLAS repacks the weights for too little
// work: VGG19's conv4 layers, 4608 x 192 bands, ran 1.4x slower) and hold at
// least kBandBytes of columns (in cache; the whole image is slowest).
// Measured on VGG19 at 512 px (bench/speed.py).
const int kMinColumns = 4096;
const size_t kBandBytes = 8u << 20;

// Output rows per band for columns of kernel_dim x output_w per output row.
inline int band_rows(int kernel_dim, int output_h, int output_w, size_t elem_size) {
  const size_t row_bytes = static_cast<size_t>(kernel_dim) * output_w * elem_size;
  const size_t by_columns = (kMinColumns + output_w - 1) / output_w;
  const size_t by_bytes = row_bytes ? kBandBytes / row_bytes : output_h;
  const size_t rows = std::max(by_columns, by_bytes);
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(output_h, rows)));
}

// Row-major C = alpha op(A) op(B) + beta C with explicit leading dimensions,
// so that a band can be a block of columns of a larger matrix.
inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k,
    float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k,
    double alpha, const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Geometry of one 2-D convolution's im2col.
struct Geometry {
  int channels, height, width;
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int output_w;

  // Output columns [*first, *last) whose input column lies inside the image,
  // for kernel column j: input column = o * stride_w - pad_w + j * dilation_w.
  void valid_columns(int j, int* first, int* last) const {
    const int x0 = j * dilation_w - pad_w;
    int lo = x0 >= 0 ? 0 : (-x0 + stride_w - 1) / stride_w;
    int hi = width - x0 > 0 ? (width - x0 + stride_w - 1) / stride_w : 0;
    lo = std::min(lo, output_w);
    *first = lo;
    *last = std::max(lo, std::min(hi, output_w));
  }
};

// The im2col columns of output rows [row0, row0 + rows):
// a (channels * kernel_h * kernel_w) x (rows * output_w) matrix.
template <typename Dtype>
void im2col_rows(const Dtype* im, const Geometry& g, int row0, int rows, Dtype* col) {
  const int n = rows * g.output_w;
  for (int c = 0; c < g.channels; ++c, im += g.height * g.width) {
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j, col += n) {
        int first, last;
        g.valid_columns(j, &first, &last);
        const int x0 = j * g.dilation_w - g.pad_w;
        for (int r = 0; r < rows; ++r) {
          Dtype* out = col + r * g.output_w;
          const int y = (row0 + r) * g.stride_h - g.pad_h + i * g.dilation_h;
          if (y < 0 || y >= g.height) {
            std::fill(out, out + g.output_w, Dtype(0));
            continue;
          }
          const Dtype* in = im + y * g.width;  // input column x0 + o * stride_w
          std::fill(out, out + first, Dtype(0));
          if (g.stride_w == 1) {
            std::copy(in + x0 + first, in + x0 + last, out + first);
          } else {
            for (int o = first; o < last; ++o) out[o] = in[x0 + o * g.stride_w];
          }
          std::fill(out + last, out + g.output_w, Dtype(0));
        }
      }
    }
  }
}

// The adjoint of im2col_rows: adds those columns into im (zeroed by the caller).
template <typename Dtype>
void col2im_rows_add(const Dtype* col, const Geometry& g, int row0, int rows, Dtype* im) {
  const int n = rows * g.output_w;
  for (int c = 0; c < g.channels; ++c, im += g.height * g.width) {
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j, col += n) {
        int first, last;
        g.valid_columns(j, &first, &last);
        const int x0 = j * g.dilation_w - g.pad_w;
        for (int r = 0; r < rows; ++r) {
          const int y = (row0 + r) * g.stride_h - g.pad_h + i * g.dilation_h;
          if (y < 0 || y >= g.height) continue;
          const Dtype* in = col + r * g.output_w;
          Dtype* out = im + y * g.width;
          if (g.stride_w == 1) {
            for (int o = first; o < last; ++o) out[x0 + o] += in[o];
          } else {
            for (int o = first; o < last; ++o) out[x0 + o * g.stride_w] += in[o];
          }
        }
      }
    }
  }
}

}  // namespace conv_bands
}  // namespace caffe

#endif  // CAFFE_UTIL_CONV_BANDS_HPP_
