"""Transports several ECR protocols share: the STX/ETX/LRC frame (``frame``) and the ENQ/ACK
serial link that carries it (``enq_ack``)."""
