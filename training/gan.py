"""The GAN as a ``keras.Model``: ``train_step`` updates D (n_critic times), then G, then the EMA.

Usage::

    from training.gan import GAN

    with strategy.scope():
        generator, discriminator = build_networks(config, num_classes)
        gan = GAN(generator, discriminator, config, num_classes=num_classes)
        gan.compile(d_optimizer=make_optimizer(config.lr_d, config),
                    g_optimizer=make_optimizer(config.lr_g, config),
                    jit_compile=config.jit)
    gan.fit(dataset, steps_per_epoch=config.steps, callbacks=[...])

The dataset yields ``(images float32 in [-1, 1] [B, H, W, C], labels int32 [B])`` with B the global
batch; with ``n_critic`` > 1 it yields ``[B, n_critic, H, W, C]`` and ``[B, n_critic]`` (map a flat
stream of ``B * n_critic`` rows with :func:`stack_critic_batches`), D step i taking column i.
Per-example losses are averaged over the GLOBAL batch (``tf.nn.compute_average_loss``), so that
N replicas apply the same update as one device. Every random draw (noise, WGAN-GP mixing
weights, DiffAugment) is stateless, seeded by ``[config.seed, draw_counter(step, ...)]``, drawn
for the global batch and sliced per replica: a resumed run draws the same values as the
uninterrupted one, and N replicas the same values for each image as one device.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from training import losses
from training.augment import Augment, BatchSlice
from training.config import TrainConfig
from training.distribute import needs_loss_scaling


def make_optimizer(learning_rate: float, config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with the config's betas; wrapped in a LossScaleOptimizer under mixed_float16."""
    optimizer: keras.optimizers.Optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=config.beta1, beta_2=config.beta2
    )
    if needs_loss_scaling(config.precision):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def ema_beta(step: tf.Tensor, decay: float, rampup: float) -> tf.Tensor:
    """The EMA coefficient at ``step``: ``decay``, with its half-life (in steps) capped at
    ``rampup * step`` early on (StyleGAN2's ramp-up) so that the average forgets the random init.
    """
    if decay <= 0.0:
        return tf.constant(0.0)
    halflife = math.log(0.5) / math.log(decay)
    step_f = tf.cast(step, tf.float32)
    if rampup > 0.0:
        halflife_t = tf.minimum(halflife, tf.maximum(rampup * step_f, 1e-8))
    else:
        halflife_t = tf.constant(halflife, tf.float32)
    return tf.pow(0.5, 1.0 / halflife_t)


def scheduled_scale(step: tf.Tensor, start: float, steps: int) -> tf.Tensor:
    """A loss weight's multiplier at ``step``: ``start`` at step 0, moving linearly to 1 at
    ``steps`` and 1 after (1 throughout when ``steps`` is 0): the class loss's boost
    (``start`` > 1) and the mode-seeking term's ramp (``start`` = 0). A function of the step
    alone, not of the run's length, so a longer run passes through the same states."""
    if steps <= 0 or start == 1.0:
        return tf.constant(1.0)
    left = tf.maximum(1.0 - tf.cast(step, tf.float32) / float(steps), 0.0)
    return 1.0 + (start - 1.0) * left


class GAN(keras.Model):
    """Generator, discriminator and the EMA generator, trained adversarially."""

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        config: TrainConfig,
        num_classes: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.num_classes = num_classes
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        # Counters live in variables so that checkpoints restore them.
        self.step = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.images_seen = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="images_seen",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.augment: Augment | None = None
        # D with its class scores, for the auxiliary class loss (None when it is off).
        self.classified: keras.Model | None = None
        if config.class_weight > 0 and num_classes > 0:
            from training.nets.dcgan import with_class_scores

            self.classified = with_class_scores(discriminator)
        # D's features, where the mode-seeking term measures (None: it measures pixels, or is off).
        self.features: keras.Model | None = None
        if config.diversity_weight > 0 and config.diversity_space == "features":
            from training.nets.dcgan import with_features

            self.features = with_features(discriminator)
        # The networks are built already. Marking the GAN built keeps ``fit`` under a
        # distribution strategy from tracing ``call`` (the EMA generator) on a data batch.
        self.built = True

    def compile(
        self,
        d_optimizer: keras.optimizers.Optimizer,
        g_optimizer: keras.optimizers.Optimizer,
        augment: Augment | None = None,
        jit_compile: bool = False,
        **kwargs: Any,
    ) -> None:
        """Set both optimizers and the optional differentiable augmentation (real and fake)."""
        if jit_compile:
            # Fail at set-up, not at the first step, where XLA cannot run the strategy's updates.
            from training.distribute import check_jit

            check_jit(tf.distribute.get_strategy())
        super().compile(jit_compile=jit_compile, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.augment = augment
        names = ["d_loss", "g_loss", "d_penalty", "real_logits", "fake_logits"]
        if self.classified is not None:
            names.append("d_class_loss")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        # Keras' TensorFlow trainer traces the model on a first batch under a strategy, reducing
        # that batch across replicas, which MultiWorkerMirroredStrategy cannot do. The networks
        # and both optimizers are built before ``fit`` (``training.loop.build_gan``): skip it.
        return None

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        # Listing the trackers here makes Keras reset them at every epoch and report them.
        return list(getattr(self, "trackers", {}).values())

    def call(self, inputs: Any, training: bool = False) -> tf.Tensor:
        """The EMA generator's images for ``[z, labels]`` (what the export serves)."""
        return self.ema_generator(inputs, training=training)

    # -- the step -----------------------------------------------------------------------------

    def _seed(self, phase: int, draw: Draw) -> tf.Tensor:
        """The stateless seed of one draw of the current step (see :func:`draw_counter`)."""
        counter = draw_counter(self.step, self.config.n_critic, phase, draw)
        return tf.stack([tf.cast(self.config.seed, tf.int64), counter])

    def _noise(self, batch: tf.Tensor, phase: int) -> tf.Tensor:
        seed = self._seed(phase, Draw.NOISE)
        return _global_draw(tf.random.stateless_normal, seed, batch, [self.config.z_dim])

    def _augmented(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if self.augment is None:
            return images
        return self.augment(images, seed, _batch_slice())

    def _d(self, images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        images = self._augmented(images, seed)
        return tf.cast(self.discriminator([images, labels], training=True), tf.float32)

    def _judge(
        self, images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """D's logits, with its class scores [B, K] when the auxiliary class loss is on (one
        augmented pass either way)."""
        if self.classified is None:
            return self._d(images, labels, seed), None
        images = self._augmented(images, seed)
        logits, scores = self.classified([images, labels], training=True)
        return tf.cast(logits, tf.float32), tf.cast(scores, tf.float32)

    def _class_loss(self, scores: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Per-example cross-entropy of the class scores, weighted by ``class_weight`` (times
        the boost of :func:`scheduled_scale` early in the run)."""
        cfg = self.config
        boost = scheduled_scale(self.step, cfg.class_boost, cfg.class_boost_steps)
        weight = cfg.class_weight * boost
        return weight * tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores)

    def _average(self, per_example: tf.Tensor) -> tf.Tensor:
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _d_update(self, real: tf.Tensor, labels: tf.Tensor, phase: int) -> dict[str, tf.Tensor]:
        cfg = self.config
        real, fake_masks = self._observe(real)
        batch = tf.shape(real)[0]
        z = self._noise(batch, phase)
        fake = self._measure(self.generator([z, labels], training=True), fake_masks)
        real_seed = self._seed(phase, Draw.AUGMENT_REAL)
        with tf.GradientTape() as tape:
            real_logits, real_scores = self._judge(real, labels, real_seed)
            fake_logits = self._d(fake, labels, self._seed(phase, Draw.AUGMENT_FAKE))
            per_example = losses.discriminator_loss(
                cfg.loss, real_logits, fake_logits, cfg.label_smoothing
            )
            class_loss = None
            if real_scores is not None:
                # Only the real images teach D the classes (classifying fakes would teach it
                # G's mistakes as well).
                class_loss = self._class_loss(real_scores, labels)
                per_example += class_loss
            penalty = tf.zeros_like(per_example)
            if cfg.loss == "wgan-gp":
                mix_seed = self._seed(phase, Draw.MIXING)
                alpha = _global_draw(tf.random.stateless_uniform, mix_seed, batch, [])
                mixed_seed = self._seed(phase, Draw.AUGMENT_MIXED)
                penalty += cfg.gp_weight * losses.gradient_penalty(
                    lambda x: self._d(x, labels, mixed_seed), real, fake, alpha
                )
            if cfg.r1_gamma > 0:
                # R1 looks at the very images D judged as real: the same augmentation.
                penalty += losses.r1_penalty(
                    lambda x: self._d(x, labels, real_seed), real, cfg.r1_gamma
                )
            loss = self._average(per_example + penalty)
            scaled = self.d_optimizer.scale_loss(loss)
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(grads, variables, strict=True))
        logs = {
            "d_loss": loss,
            "d_penalty": self._average(penalty),
            "real_logits": self._average(real_logits),
            "fake_logits": self._average(fake_logits),
        }
        if class_loss is not None:
            logs["d_class_loss"] = self._average(class_loss)
        return logs

    def _g_update(self, labels: tf.Tensor) -> tf.Tensor:
        phase = self.config.n_critic  # G's draws come after every critic step's
        z = self._noise(tf.shape(labels)[0], phase)
        seeking = self.config.diversity_weight > 0
        if seeking:
            labels = paired_labels(labels)
        with tf.GradientTape() as tape:
            views = self._g_views(self.generator([z, labels], training=True))
            per_example = tf.zeros_like(z[:, 0])
            for fake in views:  # the loss averaged over the views D is shown of each image
                logits, scores = self._judge(fake, labels, self._seed(phase, Draw.AUGMENT_FAKE))
                per_example += losses.generator_loss(self.config.loss, logits)
                if scores is not None:
                    per_example += self._class_loss(scores, labels)
            per_example /= len(views)
            if seeking:
                seeking_term = self._mode_seeking(z, views[0], labels)
                ramp = scheduled_scale(self.step, 0.0, self.config.diversity_ramp_steps)
                per_example += self.config.diversity_weight * ramp * seeking_term
            loss = self._average(per_example)
            scaled = self.g_optimizer.scale_loss(loss)
        variables = self.generator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    def _mode_seeking(self, z: tf.Tensor, view: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """The mode-seeking term of each row, in pixels or in D's features (``diversity_space``).

        Features are taken of the images as D gets them, before augmentation: the two images of
        a pair would otherwise differ by their random augmentations too.
        """
        if self.features is None:
            return mode_seeking(z, view)
        return mode_seeking(z, tf.cast(self.features([view, labels], training=True), tf.float32))

    def _critic_batches(self, images: tf.Tensor, labels: tf.Tensor) -> list[tuple[Any, Any]]:
        """The (real, labels) batch of each D step (layout: :func:`stack_critic_batches`)."""
        n_critic = self.config.n_critic
        if images.shape.rank == 5:  # [B, n_critic, H, W, C]: D step i takes column i
            return [(images[:, i], labels[:, i]) for i in range(n_critic)]
        if n_critic == 1:
            return [(images, labels)]
        raise ValueError(
            f"with n_critic={n_critic} the dataset must yield [B, n_critic, H, W, C] batches "
            "(map it with training.gan.stack_critic_batches), so that every replica holds its "
            "rows of each D step's batch"
        )

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        real_all, labels_all = data
        n_critic = self.config.n_critic
        d_logs: dict[str, tf.Tensor] = {}
        batches = self._critic_batches(real_all, labels_all)
        for phase, (real, labels) in enumerate(batches):
            d_logs = self._d_update(real, labels, phase)
        g_loss = self._g_update(batches[-1][1])
        self._update_ema()
        self.step.assign_add(1)
        self.images_seen.assign_add(self.config.batch_size * n_critic)
        # Losses are already divided by the global batch: summing over replicas gives the mean,
        # which is what the trackers must see on each replica, hence the replica-count factor.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        values = {**d_logs, "g_loss": g_loss}
        for name, value in values.items():
            self.trackers[name].update_state(value * replicas)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras averages the logs over workers along axis 0 under this strategy (it fails on
            # scalars): give each a length-1 axis, which the average removes.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    # -- partly observed data: identity here, overridden by training.masking.MaskedGAN --------

    def _observe(self, real: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(what D sees of a real batch, the masks for the fakes of this D step)."""
        return real, None

    def _g_views(self, fake: tf.Tensor) -> list[tf.Tensor]:
        """What D is shown of the generated images in a G step: the images themselves here."""
        return [fake]

    def _measure(self, fake: tf.Tensor, masks: tf.Tensor | None) -> tf.Tensor:
        """What D sees of generated images (``masks`` None: the G step's)."""
        return fake

    # -- EMA ----------------------------------------------------------------------------------

    def _update_ema(self) -> None:
        beta = ema_beta(self.step, self.config.ema_decay, self.config.ema_rampup)
        context = tf.distribute.get_replica_context()
        if context is None:  # already in cross-replica context
            self._apply_ema(tf.distribute.get_strategy(), beta)
        else:
            context.merge_call(self._apply_ema, args=(beta,))

    def _apply_ema(self, strategy: tf.distribute.Strategy, beta: tf.Tensor) -> None:
        # Trainable weights are averaged; batch-norm statistics are copied (as in StyleGAN2).
        pairs = zip(self.ema_generator.weights, self.generator.weights, strict=True)
        trainable = {id(v) for v in self.generator.trainable_weights}
        for ema_var, var in pairs:
            target = _tf_variable(ema_var)
            source = _tf_variable(var)
            if id(var) in trainable:
                # beta goes through ``args``: under a multi-device strategy it arrives here as a
                # per-replica value, which ``update`` unwraps for each device's copy.
                strategy.extended.update(
                    target, lambda e, s, b: e.assign(s + (e - s) * b), args=(source, beta)
                )
            else:
                strategy.extended.update(target, lambda e, s: e.assign(s), args=(source,))


class Draw(enum.IntEnum):
    """The random draws of one phase of a step (a D step, or G's step after them)."""

    NOISE = 0  # z of the generated images
    MIXING = 1  # WGAN-GP's real/fake mixing weights
    AUGMENT_REAL = 2  # DiffAugment of the real images (R1 reuses it: it looks at the same images)
    AUGMENT_FAKE = 3  # DiffAugment of the generated images
    AUGMENT_MIXED = 4  # DiffAugment of WGAN-GP's mixed images


def draw_counter(step: Any, n_critic: int, phase: int, draw: Draw) -> Any:
    """The second half of the stateless seed ``[config.seed, counter]`` of one draw.

    ``phase`` is the D step (0 .. n_critic - 1) or ``n_critic`` for G's step. The counter is the
    mixed-radix number (step, phase, draw): consecutive, and distinct for every draw of every step
    whatever ``n_critic`` is, so no two draws of a run share a seed (and a resumed run draws what
    the uninterrupted one did). Works on Python ints and on int64 tensors.
    """
    return (step * (n_critic + 1) + phase) * len(Draw) + int(draw)


def stack_critic_batches(n_critic: int) -> Callable[[tf.Tensor, tf.Tensor], tuple[Any, Any]]:
    """A ``dataset.map`` function: ``[n_critic * B, ...]`` batches to ``[B, n_critic, ...]``.

    Column i holds rows ``i*B .. (i+1)*B - 1`` of the flat batch: D step i's batch. A strategy
    splits dimension 0 across replicas, so each replica then holds its rows of EVERY D step's
    batch, the rows the global noise and augmentation draws are sliced by: N replicas pair each
    real image with the same label, noise and augmentation as one device.
    """

    def stack(images: tf.Tensor, labels: tf.Tensor) -> tuple[Any, Any]:
        def columns(x: tf.Tensor) -> tf.Tensor:
            shape = tf.shape(x)
            grouped = tf.reshape(x, tf.concat([[n_critic, shape[0] // n_critic], shape[1:]], 0))
            order = [1, 0, *range(2, len(x.shape) + 1)]
            return tf.transpose(grouped, order)

        return columns(images), columns(labels)

    return stack


def paired_labels(labels: tf.Tensor) -> tf.Tensor:
    """Rows 2i and 2i+1 get row 2i's label: the pairs of :func:`mode_seeking` share a class.

    Pairs are adjacent rows, so with an even batch per replica every pair lies on one replica
    and N replicas form the same pairs as one device.
    """
    even = labels[0::2]
    return tf.reshape(tf.stack([even, even], axis=1), [-1])[: tf.shape(labels)[0]]


def mode_seeking(z: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """Per-example mode-seeking term (MSGAN, Mao et al. 2019): 1 / (image distance / z distance)
    of each pair of adjacent rows, given to both rows of the pair. ``fake`` is a batch of images
    [B, H, W, C] or of their features [B, F]: the distance is the mean absolute difference.

    It grows when two latents of one class give nearly the same image, which is how a
    conditional generator that ignores z looks; minimising it pushes the pair's images apart.
    An odd last row (no partner) gets 0.
    """
    pairs = tf.shape(z)[0] // 2
    z_a, z_b = z[0 : 2 * pairs : 2], z[1 : 2 * pairs : 2]
    x = tf.reshape(tf.cast(fake, tf.float32), [tf.shape(fake)[0], -1])
    x_a, x_b = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
    image_distance = tf.reduce_mean(tf.abs(x_a - x_b), axis=1)
    z_distance = tf.reduce_mean(tf.abs(z_a - z_b), axis=1)
    per_pair = 1.0 / (image_distance / z_distance + 1e-5)
    per_row = tf.reshape(tf.stack([per_pair, per_pair], axis=1), [-1])
    return tf.pad(per_row, [[0, tf.shape(z)[0] - 2 * pairs]])


def _batch_slice() -> BatchSlice:
    """This replica's slice of the global batch (the whole batch outside a strategy)."""
    replica = tf.distribute.get_replica_context()
    if replica is None:
        return BatchSlice()
    return BatchSlice(replica.replica_id_in_sync_group, replica.num_replicas_in_sync)


def _global_draw(
    sample: Callable[..., tf.Tensor], seed: tf.Tensor, batch: tf.Tensor, tail: list[int]
) -> tf.Tensor:
    """``sample``'s values for the whole global batch, sliced to this replica's rows.

    The data is split across replicas the same way, so N replicas see exactly the z (and the
    WGAN-GP mixing weights) that one device would: the update does not depend on the number of
    devices.
    """
    part = _batch_slice()
    values = sample([batch * part.replicas, *tail], seed=seed)
    start = tf.cast(part.replica, tf.int32) * batch
    return values[start : start + batch]


def _multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several workers (Keras' own test for its log reduction)."""
    extended = strategy.extended
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        getattr(extended, "_in_multi_worker_mode", lambda: False)()
    )


def _tf_variable(variable: Any) -> Any:
    """The tf.Variable behind a Keras 3 variable (Keras wraps it on the TensorFlow backend)."""
    return variable if isinstance(variable, tf.Variable) else variable.value
