// stylize: 2-D convolution on the CPU by bands of output rows.
//
// Stock Caffe lowers a whole image with im2col before one GEMM: for VGG's
// conv1_2 at 512x512 px that writes a 604 MB column matrix, which the GEMM
// then reads back from main memory, and col2im does the same in backward.
// Done a band of output rows at a time, the columns of a band are still in
// cache when the GEMM reads them, the column buffer shrinks from the largest
// layer's whole image to one band, and the results are the same sums of the
// same products (each GEMM just sees fewer columns).
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
// least kBandBytes of columns (the whole image is slowest). Measured on VGG19
// at 512 px with bench/speed.py.
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

// One ungrouped 2-D convolution: its geometry, GEMM sizes and band height.
struct Conv {
  int channels, height, width;  // input
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int output_h, output_w, outputs;
  int kernel_dim;  // channels * kernel_h * kernel_w: rows of the column matrix
  int band;        // output rows per band (band_rows)

  // Calls f(column_row, input_row, x0, first, last) for every row of the column
  // matrix of output rows [row0, row0 + rows): column_row holds output_w values;
  // input_row is the image row it reads (NULL where the kernel falls in the
  // padding), at input column x0 + o * stride_w for output column o, inside the
  // image for o in [first, last) only.
  template <typename ColPtr, typename ImPtr, typename F>
  void for_each_column_row(ImPtr im, int row0, int rows, ColPtr col, F f) const {
    const int n = rows * output_w;
    for (int c = 0; c < channels; ++c, im += height * width) {
      for (int i = 0; i < kernel_h; ++i) {
        for (int j = 0; j < kernel_w; ++j, col += n) {
          const int x0 = j * dilation_w - pad_w;
          int first = x0 >= 0 ? 0 : (-x0 + stride_w - 1) / stride_w;
          int last = width - x0 > 0 ? (width - x0 + stride_w - 1) / stride_w : 0;
          first = std::min(first, output_w);
          last = std::max(first, std::min(last, output_w));
          for (int r = 0; r < rows; ++r) {
            const int y = (row0 + r) * stride_h - pad_h + i * dilation_h;
            ImPtr row = NULL;
            if (y >= 0 && y < height) row = im + y * width;
            f(col + r * output_w, row, x0, first, last);
          }
        }
      }
    }
  }

  // The im2col columns of output rows [row0, row0 + rows).
  template <typename Dtype>
  void im2col(const Dtype* im, int row0, int rows, Dtype* col) const {
    const int ow = output_w, sw = stride_w;
    for_each_column_row(im, row0, rows, col,
        [ow, sw](Dtype* out, const Dtype* in, int x0, int first, int last) {
      if (!in) first = last = ow;
      std::fill(out, out + first, Dtype(0));
      if (sw == 1) {
        std::copy(in + x0 + first, in + x0 + last, out + first);  // vectorized
      } else {
        for (int o = first; o < last; ++o) out[o] = in[x0 + o * sw];
      }
      std::fill(out + last, out + ow, Dtype(0));
    });
  }

  // The adjoint of im2col: adds those columns into im.
  template <typename Dtype>
  void col2im_add(const Dtype* col, int row0, int rows, Dtype* im) const {
    const int sw = stride_w;
    for_each_column_row(im, row0, rows, col,
        [sw](const Dtype* in, Dtype* out, int x0, int first, int last) {
      if (!out) return;
      if (sw == 1) {
        for (int o = first; o < last; ++o) out[x0 + o] += in[o];  // vectorized
      } else {
        for (int o = first; o < last; ++o) out[x0 + o * sw] += in[o];
      }
    });
  }

  // output (outputs x output_h*output_w) = weights (outputs x kernel_dim) * columns.
  template <typename Dtype>
  void forward(const Dtype* input, const Dtype* weights, Dtype* output, Dtype* col) const {
    for (int row = 0; row < output_h; row += band) {
      const int rows = std::min(band, output_h - row), n = rows * output_w;
      im2col(input, row, rows, col);
      gemm(CblasNoTrans, CblasNoTrans, outputs, n, kernel_dim, Dtype(1), weights, kernel_dim,
           col, n, Dtype(0), output + row * output_w, output_h * output_w);
    }
  }

  // input_diff = col2im(weights^T * output_diff), band by band.
  template <typename Dtype>
  void backward_input(const Dtype* output_diff, const Dtype* weights, Dtype* input_diff, Dtype* col) const {
    std::fill(input_diff, input_diff + channels * height * width, Dtype(0));
    for (int row = 0; row < output_h; row += band) {
      const int rows = std::min(band, output_h - row), n = rows * output_w;
      gemm(CblasTrans, CblasNoTrans, kernel_dim, n, outputs, Dtype(1), weights, kernel_dim,
           output_diff + row * output_w, output_h * output_w, Dtype(0), col, n);
      col2im_add(col, row, rows, input_diff);
    }
  }

  // weights_diff += output_diff * columns^T, band by band.
  template <typename Dtype>
  void backward_weights(const Dtype* input, const Dtype* output_diff, Dtype* weights_diff, Dtype* col) const {
    for (int row = 0; row < output_h; row += band) {
      const int rows = std::min(band, output_h - row), n = rows * output_w;
      im2col(input, row, rows, col);
      gemm(CblasNoTrans, CblasTrans, outputs, kernel_dim, n, Dtype(1), output_diff + row * output_w,
           output_h * output_w, col, n, Dtype(1), weights_diff, kernel_dim);
    }
  }
};

}  // namespace conv_bands
}  // namespace caffe

#endif  // CAFFE_UTIL_CONV_BANDS_HPP_
