pub mod egress;
pub mod netpol;
