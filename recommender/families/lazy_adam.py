"""Adam that updates only the embedding rows a batch touched ("lazy" Adam), for big tables.

Keras's Adam turns an embedding's sparse gradient into a dense update of the whole table (and of
its two moment tables) every step, so a step costs time in proportion to the number of users and
movies rather than to the batch. Here a sparse gradient (``tf.IndexedSlices``) moves only its rows
and their moments; dense gradients get Keras's update unchanged. Rows not in a batch keep their
moments as they were (no decay), as in TensorFlow Addons' LazyAdam. TensorFlow backend only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lazy_adam"]


def lazy_adam(learning_rate: float) -> Any:
    """A Keras Adam optimizer with sparse row updates for embedding gradients."""
    import keras
    import tensorflow as tf

    class LazyAdam(keras.optimizers.Adam):
        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            if not isinstance(gradient, tf.IndexedSlices):
                super().update_step(gradient, variable, learning_rate)
                return
            dtype = variable.dtype
            rows, where = tf.unique(gradient.indices)
            grad = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), where, tf.shape(rows)[0])
            lr = tf.cast(learning_rate, dtype)
            step = tf.cast(self.iterations + 1, dtype)
            b1, b2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            alpha = lr * tf.sqrt(1 - tf.pow(b2, step)) / (1 - tf.pow(b1, step))
            index = self._get_variable_index(variable)
            m, v = self._momentums[index], self._velocities[index]
            m_rows = b1 * tf.gather(m.value, rows) + (1 - b1) * grad
            v_rows = b2 * tf.gather(v.value, rows) + (1 - b2) * tf.square(grad)
            self.assign(m, tf.IndexedSlices(m_rows, rows))
            self.assign(v, tf.IndexedSlices(v_rows, rows))
            step_rows = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
            self.assign_sub(variable, tf.IndexedSlices(step_rows, rows))

    return LazyAdam(learning_rate=learning_rate)
