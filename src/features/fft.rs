//! Power spectrum of a real frame. Even sizes N use one complex FFT of N/2 points on the packed
//! samples `z[n] = x[2n] + i·x[2n+1]`, then split even/odd halves with one twiddle per bin and
//! go straight to |X[k]|², in structure-of-arrays loops the compiler vectorises. Odd sizes fall
//! back to a complex FFT of N points.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Planned power spectrum for real frames of `fft_size` samples; owns every buffer.
pub(crate) struct PowerSpectrum {
    fft_size: usize,
    /// N/2 for even N (packed), N for odd N.
    fft_len: usize,
    fft: Arc<dyn Fft<f32>>,
    /// FFT buffer, `fft_len + 1` long: the last entry repeats entry 0 (bin N/2 wraps around).
    buf: Vec<Complex<f32>>,
    /// `rev[k] = buf[(fft_len − k) mod fft_len]`, k = 0 ..= fft_len.
    rev: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// `−i·W^k` with `W = exp(−2πi/N)`, split in real and imaginary parts, k = 0 ..= N/2.
    rot_re: Vec<f32>,
    rot_im: Vec<f32>,
}

impl PowerSpectrum {
    pub(crate) fn new(fft_size: usize) -> Self {
        let even = fft_size.is_multiple_of(2);
        let fft_len = if even { fft_size / 2 } else { fft_size };
        let fft = FftPlanner::<f32>::new().plan_fft_forward(fft_len);
        let num_bins = fft_size / 2 + 1;
        let (rot_re, rot_im) = (0..num_bins)
            .map(|k| {
                let angle = -2.0 * std::f64::consts::PI * k as f64 / fft_size as f64;
                // −i·(cos a + i sin a) = sin a − i cos a
                (angle.sin() as f32, -angle.cos() as f32)
            })
            .unzip();
        Self {
            fft_size,
            fft_len,
            buf: vec![Complex::new(0.0, 0.0); fft_len + 1],
            rev: vec![Complex::new(0.0, 0.0); fft_len + 1],
            scratch: vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()],
            fft,
            rot_re,
            rot_im,
        }
    }

    /// Writes |X[k]|² for k < min(power.len(), N/2 + 1), X = DFT of `frame` (N samples).
    pub(crate) fn compute(&mut self, frame: &[f32], power: &mut [f32]) {
        let frame = &frame[..self.fft_size];
        let m = self.fft_len;
        if self.fft_size % 2 == 1 {
            for (z, &x) in self.buf.iter_mut().zip(frame) {
                *z = Complex::new(x, 0.0);
            }
            self.fft
                .process_with_scratch(&mut self.buf[..m], &mut self.scratch);
            let bins = power.len().min(self.fft_size / 2 + 1);
            for (p, z) in power[..bins].iter_mut().zip(&self.buf) {
                *p = z.re * z.re + z.im * z.im;
            }
            return;
        }
        for (z, pair) in self.buf.iter_mut().zip(frame.chunks_exact(2)) {
            *z = Complex::new(pair[0], pair[1]);
        }
        self.fft
            .process_with_scratch(&mut self.buf[..m], &mut self.scratch);
        self.buf[m] = self.buf[0];
        self.rev[0] = self.buf[0];
        for (r, &z) in self.rev[1..=m].iter_mut().zip(self.buf[..m].iter().rev()) {
            *r = z;
        }
        // With A = Z[k], B = conj(Z[M−k]): 2·X[k] = (A + B) − i·W^k·(A − B).
        let bins = power.len().min(m + 1);
        for ((((p, a), c), &wr), &wi) in power[..bins]
            .iter_mut()
            .zip(&self.buf)
            .zip(&self.rev)
            .zip(&self.rot_re)
            .zip(&self.rot_im)
        {
            let (sum_re, sum_im) = (a.re + c.re, a.im - c.im);
            let (diff_re, diff_im) = (a.re - c.re, a.im + c.im);
            let x_re = sum_re + (wr * diff_re - wi * diff_im);
            let x_im = sum_im + (wr * diff_im + wi * diff_re);
            *p = 0.25 * (x_re * x_re + x_im * x_im);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn power_spectrum_matches_naive_dft_for_even_and_odd_sizes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [256usize, 200, 64, 75, 2] {
            let frame: Vec<f32> = (0..n).map(|_| rng.random_range(-1000.0..1000.0)).collect();
            let mut spectrum = PowerSpectrum::new(n);
            let mut power = vec![f32::NAN; n / 2 + 1];
            spectrum.compute(&frame, &mut power);
            let total: f64 = frame.iter().map(|&x| f64::from(x).powi(2)).sum();
            for (k, &p) in power.iter().enumerate() {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (t, &x) in frame.iter().enumerate() {
                    let angle = -2.0 * std::f64::consts::PI * (k * t % n) as f64 / n as f64;
                    re += f64::from(x) * angle.cos();
                    im += f64::from(x) * angle.sin();
                }
                let exact = re * re + im * im;
                // f32 round-off relative to the frame's total energy times N (Parseval scale).
                assert!(
                    (f64::from(p) - exact).abs() <= 1e-5 * total * n as f64,
                    "n {n} bin {k}: {p} vs {exact}"
                );
            }
        }
    }
}
