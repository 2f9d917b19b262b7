"""principal_angle_cosines (scipy.linalg.subspace_angles underneath) against angles known exactly."""

import numpy as np

from graph_eigenmap.metrics import principal_angle_cosines


def test_known_angles_largest_cosine_first_and_basis_free():
    angle = np.pi / 6
    a = np.eye(4)[:, :2]
    b = np.array([[1, 0], [0, np.cos(angle)], [0, np.sin(angle)], [0, 0]])
    np.testing.assert_allclose(principal_angle_cosines(a, b), [1.0, np.cos(angle)], atol=1e-12)
    mix = np.array([[2.0, 1.0], [-1.0, 3.0]])  # another basis of the same span, signs and scale included
    np.testing.assert_allclose(principal_angle_cosines(a @ mix, -b), [1.0, np.cos(angle)], atol=1e-12)
    np.testing.assert_allclose(principal_angle_cosines(a, np.eye(4)[:, 2:]), [0.0, 0.0], atol=1e-12)
    assert principal_angle_cosines(np.eye(4)[:, :3], b).shape == (2,)  # min(k_a, k_b) angles
